"""`model.experiments`: the run plan, resuming, the report from a fixed runs.csv, a real run."""

import argparse
import json
import os

import numpy as np
import pytest

from model import config as config_lib
from model import experiments
from model.config import TrainConfig
from model.experiments import Run, Variant

TASKS = ("click", "conversion")


def test_plan_runs_each_config_once_per_seed_and_ngcf_per_task():
    runs = experiments.plan_runs((2, 4, 5), (2,), seeds=2, tasks=TASKS)
    keys = [r.key for r in runs]
    assert len(keys) == len(set(keys))
    # MoGENet's defaults are Table 2's row, κ = product, i+ii+iii and 4 graph experts: one run.
    assert keys.count("mogenet-seed=0") == 1 and "mogenet-seed=1" in keys
    assert "ngcf-tasks=click-seed=0" in keys and "ngcf-tasks=conversion-seed=1" in keys
    assert "mogenet-kappa=concat-seed=1" in keys and "mogenet-graph_experts=0-seed=0" in keys
    assert "mogenet-cooperative=False-uncertainty=False-seed=0" in keys
    assert "mogenet-l2=False-seed=1" in keys  # the L2 ablation beside Table 5
    # 8 baselines (NGCF twice) + MoGENet + 3 other κ + 3 other losses + the L2
    # ablation + 4 other expert counts
    assert len(runs) == 2 * (9 + 1 + 3 + 3 + 1 + 4)
    with pytest.raises(ValueError, match="no Table 7"):
        experiments.plan_runs((7,), (), 1, TASKS)


def test_table5_is_the_papers_loss_ablation_down_to_the_training_flags(monkeypatch):
    from model import train

    # i = plain sum of BCEs, ii = uncertainty weighting, iii = cooperative loss; L2 on.
    paper = {
        "i": (False, False),
        "i + ii": (True, False),
        "i + iii": (False, True),
        "i + ii + iii": (True, True),
    }
    (_, rows), (l2_title, l2_rows) = experiments.table_variants(5)
    assert [v.label for v in rows] == list(paper)
    assert "not in the paper" in l2_title and [v.label for v in l2_rows] == ["i + ii + iii − L2"]
    # The full loss is MoGENet's default: the same run as Table 2's MoGENet.
    assert rows[-1].overrides == () == experiments.table_variants(2)[0][1][-1].overrides

    commands = []
    monkeypatch.setattr(
        experiments.subprocess,
        "run",
        lambda command, **_: commands.append(command) or argparse.Namespace(returncode=0),
    )
    runs = experiments.plan_runs((5,), (), seeds=1, tasks=TASKS)
    assert len(runs) == 5
    for run in runs:
        experiments.train_run(run, "data", "dir", TrainConfig(), TASKS)
    # What model.train reads from each command line.
    configs = [
        config_lib.from_flags(train.parse_args(command[3:]), config_lib.ModelConfig)
        for command in commands
    ]
    switches = [(c.uncertainty, c.cooperative, c.l2) for c in configs]
    assert switches == [(u, co, True) for u, co in paper.values()] + [(True, True, False)]
    assert all(
        c == config_lib.ModelConfig(uncertainty=c.uncertainty, cooperative=c.cooperative, l2=c.l2)
        for c in configs
    )


def test_table5_report_has_the_papers_rows_and_the_l2_ablation_apart(tmp_path):
    sections = experiments.table_variants(5)
    rows = []
    for seed, noise in enumerate((0.0, 0.002, -0.001)):
        for k, variant in enumerate(v for _, vs in sections for v in vs):
            value = 0.6 + 0.001 * k + noise * (1 + 0.1 * k)
            rows.append(_row(variant, seed, {t: value for t in TASKS}))
    report = experiments.write_report(rows, TASKS, 3, (5,), (), str(tmp_path), "cmd")
    text = open(report).read()
    assert "## Table 5 — the losses: i the original loss (plain sum of BCEs)" in text
    assert "L2 on in every row" in text
    table = text.split("## Table 5")[1]
    labels = [line.split(" | ")[0][2:] for line in table.splitlines() if line.startswith("| i")]
    assert labels == ["i", "i + ii", "i + iii", "i + ii + iii", "i + ii + iii − L2"]
    paper, ablation = table.split(experiments.L2_ABLATION)
    ablated = 0.604 + np.array([0.0, 0.002, -0.001]) * 1.4  # k = 4
    assert "− L2" not in paper
    assert f"| i + ii + iii − L2 | {ablated.mean():.4f} ± {ablated.std(ddof=1):.4f}" in ablation


def _fake_metrics(run):
    rng = np.random.default_rng(abs(hash(run.key)) % 2**32)
    tasks = run.tasks or TASKS
    return {
        "epochs_run": 3,
        "test": {t: {"gauc": 0.6 + 0.1 * rng.random(), "auc": 0.7, "log_loss": 0.3} for t in tasks},
    }


def test_execute_resumes_and_skips_finished_runs(tmp_path):
    runs = experiments.plan_runs((4,), (), seeds=2, tasks=TASKS)
    trained = []

    def fake_train(run, data_dir, run_dir, train_config, tasks):
        trained.append(run.key)
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "metrics.json"), "w") as f:
            json.dump(_fake_metrics(run), f)

    out = str(tmp_path)
    rows = experiments.execute(runs, "data", out, TrainConfig(), TASKS, fake_train)
    assert len(trained) == len(runs) == 8 and len(rows) == 8
    os.remove(os.path.join(out, "runs", runs[3].key, "metrics.json"))  # a crash mid-run
    trained.clear()
    again = experiments.execute(runs, "data", out, TrainConfig(), TASKS, fake_train)
    assert trained == [runs[3].key]
    assert [r["key"] for r in again] == [r.key for r in runs]
    assert all(r["click_gauc"] is not None and r["duration_s"] is not None for r in again)
    with pytest.raises(ValueError, match="other settings"):  # other flags, same --out
        experiments.execute(runs, "data", out, TrainConfig(epochs=3), TASKS, fake_train)
    # A run recorded before a TrainConfig field existed trained with its default.
    settings_path = os.path.join(out, "runs", runs[0].key, "run.json")
    with open(settings_path) as f:
        settings = json.load(f)
    del settings["train_config"]["monitor"]
    with open(settings_path, "w") as f:
        json.dump(settings, f)
    trained.clear()
    experiments.execute(runs, "data", out, TrainConfig(), TASKS, fake_train)
    assert trained == []
    with pytest.raises(ValueError, match="other settings"):
        experiments.execute(runs, "data", out, TrainConfig(monitor="none"), TASKS, fake_train)


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


def test_report_from_a_fixed_runs_csv(tmp_path):
    ((_, table2),) = experiments.table_variants(2)
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
    experiments.write_runs_csv(rows, path)
    back = experiments.read_runs_csv(path)
    report = experiments.write_report(back, TASKS, 3, (2,), (), str(tmp_path), "cmd")
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


def test_a_real_single_task_run_trains_and_reports(tmp_path):
    from sklearn.metrics import log_loss, roc_auc_score

    from model import trained
    from model.baselines import NGCF
    from model.evaluation import predict_split
    from tests.model.planted import write_planted

    data_dir = write_planted(tmp_path / "data", sizes={"train": 128, "valid": 32, "test": 32})
    run = Run(Variant.of("NGCF", model="ngcf", embedding_dim=8), ("click",), 0)
    # monitor "none": no early stopping, the last epoch's weights are kept.
    config = TrainConfig(
        epochs=2, batch_size=64, learning_rate=0.01, deterministic=True, monitor="none"
    )
    (row,) = experiments.execute([run], data_dir, str(tmp_path / "out"), config, TASKS)
    assert row["tasks"] == "click" and row["epochs"] == 2 and row["best_epoch"] == 2
    run_dir = tmp_path / "out" / "runs" / run.key
    with open(run_dir / "metrics.json") as f:
        written = json.load(f)
    assert written["monitor"] == "none"  # the flag reached model.train
    # The row holds the run's test metrics, each in its own column, none for the other task.
    click, names = written["test"]["click"], ("gauc", "auc", "log_loss")
    assert [row[f"click_{name}"] for name in names] == [click[name] for name in names]
    assert [row[f"conversion_{name}"] for name in names] == [None] * 3
    # Those metrics are the saved single-task NGCF's, on its own test predictions.
    model, entities = trained.load(str(run_dir))
    assert isinstance(model, NGCF) and model.task_names == ("click",)
    predictions = predict_split(model, data_dir, "test", 64, entities)
    labels, scores = predictions.labels["click"], predictions.scores["click"]
    assert click["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert click["log_loss"] == pytest.approx(log_loss(labels, scores), rel=1e-5)


def test_a_bad_training_flag_is_a_one_line_error(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert experiments.main(["--data", str(tmp_path), "--out", out, "--monitor", "loss"]) == 2
    error = capsys.readouterr().err.strip()
    assert (
        error.startswith("model.experiments: error: monitor must be one of") and "\n" not in error
    )


def test_only_runs_and_reports_the_named_rows_of_tables_2_and_3(tmp_path, capsys):
    only = ("MLP", "MMoE", "MMoE + MGNN", "ESMM")  # ESMM alone: its pair is not whole
    runs = experiments.plan_runs((2, 3), (), seeds=2, tasks=TASKS, only=only)
    assert sorted({r.key.rsplit("-seed=", 1)[0] for r in runs}) == [
        "esmm", "mlp", "mmoe", "mmoe-mgnn=True", "mogenet",
    ]  # fmt: skip
    assert len(runs) == 2 * 5
    rows = [
        _row(run.variant, run.seed, {t: 0.6 + 0.01 * k for t in TASKS})
        for k, run in enumerate(runs)
    ]
    text = open(
        experiments.write_report(rows, TASKS, 2, (2, 3), (), str(tmp_path), "cmd", only)
    ).read()
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
    out = str(tmp_path / "out")
    assert experiments.main(["--data", str(tmp_path), "--out", out, "--only", "MMoE,Nope"]) == 2
    assert "--only names no row of Table 2 or 3: Nope" in capsys.readouterr().err
