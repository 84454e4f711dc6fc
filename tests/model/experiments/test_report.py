"""`model.experiments.report` (with `tables`, `figures`, `results`): reports from fixed rows."""

import json
import os

import numpy as np

from model.experiments import plan, results
from model.experiments.plan import Run, Variant
from model.experiments.report import write_report

TASKS = ("click", "conversion")


def _row(variant: Variant, seed: int, gauc: dict, tasks=TASKS):
    row = {
        "key": Run(variant, None, seed).key,
        "model": variant.model,
        "overrides": json.dumps(dict(variant.overrides), sort_keys=True),
        "tasks": ",".join(tasks),
        "seed": seed,
        "epochs": 3,
        "best_epoch": 2,
        "duration_s": 1.0,
    }
    for task in TASKS:
        row[f"{task}_gauc"] = gauc.get(task)
        row[f"{task}_auc"] = gauc.get(task)
        row[f"{task}_log_loss"] = 0.3 if task in gauc else None
    return row


def test_table5_report_has_the_papers_rows_and_the_l2_ablation_apart(tmp_path):
    sections = plan.table_variants(5)
    rows = []
    for seed, noise in enumerate((0.0, 0.002, -0.001)):
        for k, variant in enumerate(v for _, vs in sections for v in vs):
            value = 0.6 + 0.001 * k + noise * (1 + 0.1 * k)
            rows.append(_row(variant, seed, {t: value for t in TASKS}))
    report = write_report(rows, TASKS, 3, (5,), (), str(tmp_path), "cmd")
    text = open(report).read()
    assert "## Table 5 — the losses: i the original loss (plain sum of BCEs)" in text
    assert "L2 on in every row" in text
    table = text.split("## Table 5")[1]
    labels = [line.split(" | ")[0][2:] for line in table.splitlines() if line.startswith("| i")]
    assert labels == ["i", "i + ii", "i + iii", "i + ii + iii", "i + ii + iii − L2"]
    paper, ablation = table.split(plan.L2_ABLATION)
    ablated = 0.604 + np.array([0.0, 0.002, -0.001]) * 1.4  # k = 4
    assert "− L2" not in paper
    assert f"| i + ii + iii − L2 | {ablated.mean():.4f} ± {ablated.std(ddof=1):.4f}" in ablation


def test_report_from_a_fixed_runs_csv(tmp_path):
    ((_, table2),) = plan.table_variants(2)
    rows = []
    for seed, noise in enumerate((0.0, 0.002, -0.001)):
        for k, variant in enumerate(table2):
            if variant.model == "ngcf":
                for task in TASKS:  # one single-task run per task
                    rows.append(_row(variant, seed, {task: 0.55 + noise}, tasks=(task,)))
                continue
            base = 0.60 if variant.label == "MMoE" else 0.56 + 0.001 * k
            value = 0.65 + 0.0005 * seed if variant.label == "MoGENet" else base
            rows.append(_row(variant, seed, {t: value + noise for t in TASKS}))
    path = str(tmp_path / "runs.csv")
    results.write_runs_csv(rows, path)
    back = results.read_runs_csv(path)
    report = write_report(back, TASKS, 3, (2,), (), str(tmp_path), "cmd")
    text = open(report).read()
    assert "Command: `cmd`" in text
    mmoe = next(line for line in text.splitlines() if line.startswith("| MMoE |"))
    assert mmoe.count("<u>0.6003 ± 0.0015</u>") == 2  # the best baseline, underlined
    ours_values = np.array([0.65, 0.6525, 0.65])  # 0.65 + 0.0005 · seed + noise
    ours = next(line for line in text.splitlines() if line.startswith("| MoGENet |"))
    assert f"{ours_values.mean():.4f} ± {ours_values.std(ddof=1):.4f}**" in ours  # p < 0.01
    rela = next(line for line in text.splitlines() if line.startswith("| RelaImpr"))
    expected = (ours_values.mean() - 0.5) / (0.60 + 0.001 / 3 - 0.5) - 1
    assert f"{expected:+.2%}" in rela
    ngcf = next(line for line in text.splitlines() if line.startswith("| NGCF |"))
    assert ngcf.count("0.5503 ± 0.0015") == 2
    assert os.path.getsize(tmp_path / "table2.png") > 1000


def test_only_runs_and_reports_the_named_rows_of_tables_2_and_3(tmp_path):
    only = ("MLP", "MMoE", "MMoE + MGNN", "ESMM")  # ESMM alone: its pair is not whole
    runs = plan.plan_runs((2, 3), (), seeds=2, tasks=TASKS, only=only)
    assert sorted({r.key.rsplit("-seed=", 1)[0] for r in runs}) == [
        "esmm", "mlp", "mmoe", "mmoe-mgnn=True", "mogenet",
    ]  # fmt: skip
    assert len(runs) == 2 * 5
    rows = [
        _row(run.variant, run.seed, {t: 0.6 + 0.01 * k for t in TASKS})
        for k, run in enumerate(runs)
    ]
    text = open(write_report(rows, TASKS, 2, (2, 3), (), str(tmp_path), "cmd", only)).read()
    table2, table3 = text.split("## Table 3")
    labels2 = [
        line.split(" | ")[0][2:]
        for line in table2.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    assert labels2 == ["model", "MLP", "ESMM", "MMoE", "MoGENet", "RelaImpr over the best baseline"]
    labels3 = [
        line.split(" | ")[0][2:]
        for line in table3.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    assert labels3 == ["model", "MMoE", "MMoE + MGNN", "RelaImpr of + MGNN"]
