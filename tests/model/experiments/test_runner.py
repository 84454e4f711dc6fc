"""`model.experiments.runner`: the training commands, resuming, a real run."""

import argparse
import json
import os

import numpy as np
import pytest

from model import config as config_lib
from model.config import TrainConfig
from model.experiments import plan, runner
from model.experiments.plan import Run, Variant

TASKS = ("click", "conversion")


def test_table5_is_the_papers_loss_ablation_down_to_the_training_flags(monkeypatch):
    from model import train

    # i = plain sum of BCEs, ii = uncertainty weighting, iii = cooperative loss; L2 on.
    paper = {
        "i": (False, False),
        "i + ii": (True, False),
        "i + iii": (False, True),
        "i + ii + iii": (True, True),
    }
    (_, rows), (l2_title, l2_rows) = plan.table_variants(5)
    assert [v.label for v in rows] == list(paper)
    assert "not in the paper" in l2_title and [v.label for v in l2_rows] == ["i + ii + iii − L2"]
    # The full loss is MoGENet's default: the same run as Table 2's MoGENet.
    assert rows[-1].overrides == () == plan.table_variants(2)[0][1][-1].overrides

    commands = []
    monkeypatch.setattr(
        runner.subprocess,
        "run",
        lambda command, **_: commands.append(command) or argparse.Namespace(returncode=0),
    )
    runs = plan.plan_runs((5,), (), seeds=1, tasks=TASKS)
    assert len(runs) == 5
    for run in runs:
        runner.train_run(run, "data", "dir", TrainConfig(), TASKS)
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


def _fake_metrics(run):
    rng = np.random.default_rng(abs(hash(run.key)) % 2**32)
    tasks = run.tasks or TASKS
    return {
        "epochs_run": 3,
        "test": {t: {"gauc": 0.6 + 0.1 * rng.random(), "auc": 0.7, "log_loss": 0.3} for t in tasks},
    }


def test_execute_resumes_and_skips_finished_runs(tmp_path):
    runs = plan.plan_runs((4,), (), seeds=2, tasks=TASKS)
    trained = []

    def fake_train(run, data_dir, run_dir, train_config, tasks):
        trained.append(run.key)
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "metrics.json"), "w") as f:
            json.dump(_fake_metrics(run), f)

    out = str(tmp_path)
    rows = runner.execute(runs, "data", out, TrainConfig(), TASKS, fake_train)
    assert len(trained) == len(runs) == 8 and len(rows) == 8
    os.remove(os.path.join(out, "runs", runs[3].key, "metrics.json"))  # a crash mid-run
    trained.clear()
    again = runner.execute(runs, "data", out, TrainConfig(), TASKS, fake_train)
    assert trained == [runs[3].key]
    assert [r["key"] for r in again] == [r.key for r in runs]
    assert all(r["click_gauc"] is not None and r["duration_s"] is not None for r in again)
    with pytest.raises(ValueError, match="other settings"):  # other flags, same --out
        runner.execute(runs, "data", out, TrainConfig(epochs=3), TASKS, fake_train)
    # A run recorded before a TrainConfig field existed trained with its default.
    settings_path = os.path.join(out, "runs", runs[0].key, "run.json")
    with open(settings_path) as f:
        settings = json.load(f)
    del settings["train_config"]["monitor"]
    with open(settings_path, "w") as f:
        json.dump(settings, f)
    trained.clear()
    runner.execute(runs, "data", out, TrainConfig(), TASKS, fake_train)
    assert trained == []
    with pytest.raises(ValueError, match="other settings"):
        runner.execute(runs, "data", out, TrainConfig(monitor="none"), TASKS, fake_train)


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
    (row,) = runner.execute([run], data_dir, str(tmp_path / "out"), config, TASKS)
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
