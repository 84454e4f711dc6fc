"""Distributed training: two loopback workers, one mirrored replica, a parameter-server cluster."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from model import trained
from model.config import ModelConfig, TrainConfig
from model.evaluation import predict_split
from model.local_cluster import free_port
from model.train import train
from tests.model.planted import TASKS, write_planted

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_FLAGS = [
    "--epochs",
    "2",
    "--embedding_dim",
    "8",
    "--expert_units",
    "8",
    "--batch_size",
    "64",
    "--learning_rate",
    "0.01",
    "--no-jit_compile",
    "--verbose",
    "2",
]
# TRAIN_FLAGS in process, in the same example order (seeded shuffles).
MODEL = dict(embedding_dim=8, expert_units=(8,))
TRAIN = dict(epochs=2, batch_size=64, learning_rate=0.01, jit_compile=False, deterministic=True)
# The mini-batch-aware L2 counts an embedding row once per replica batch that reads it,
# so with it on, two replicas of 32 examples penalise more than one of 64. Runs compared
# with the default strategy train without it.
NO_L2 = ["--no-l2"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted(
        tmp_path_factory.mktemp("planted"), sizes={"train": 512, "valid": 128, "test": 128}
    )


def _env(**extra):
    return {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


@pytest.fixture(scope="module")
def default_run(planted, tmp_path_factory):
    """The test predictions of the default strategy's model, trained as TRAIN and NO_L2 say."""
    model_dir = str(tmp_path_factory.mktemp("default") / "model")
    train(planted, model_dir, ModelConfig(l2=False, **MODEL), TrainConfig(**TRAIN), verbose=0)
    return _check_run(model_dir, planted)[1]


def _check_run(model_dir, data_dir, epochs=2):
    """Returns a finished run's metrics.json and its saved model's test predictions.

    The test metrics written must be those of the saved model's own predictions.
    """
    metrics = json.loads(open(os.path.join(model_dir, "metrics.json")).read())
    assert metrics["epochs_run"] == epochs
    model, entities = trained.load(model_dir)
    predictions = predict_split(model, data_dir, "test", 1024, entities)
    for task in TASKS:
        labels, scores = predictions.labels[task], predictions.scores[task]
        written = metrics["test"][task]
        assert written["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
        assert written["log_loss"] == pytest.approx(log_loss(labels, scores), rel=1e-5)
    return metrics, predictions


def _assert_same_predictions(got, expected, atol):
    for task in TASKS:
        np.testing.assert_allclose(got.scores[task], expected.scores[task], rtol=0, atol=atol)


def test_multi_worker_mirrored_on_two_loopback_workers(planted, default_run, tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    model_dir = str(tmp_path / "model")
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "model.train", "--data", planted, "--model_dir", model_dir]
                + ["--strategy", "multi_worker", *TRAIN_FLAGS, *NO_L2],
                env=_env(TF_CONFIG=json.dumps(tf_config)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=ROOT,
            )
        )
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    _, predictions = _check_run(model_dir, planted)
    # Two replicas of 32 examples a step train the model one replica of 64 trains (the
    # same 64 examples, split between the workers), up to summation order.
    _assert_same_predictions(predictions, default_run, atol=1e-5)
    # Both workers trained the same replicated model and so report the same test metrics.
    assert outputs[0].splitlines()[-2:] == outputs[1].splitlines()[-2:]


def test_parameter_server_on_an_in_process_cluster(planted, tmp_path):
    model_dir = str(tmp_path / "model")
    result = subprocess.run(
        [sys.executable, "-m", "model.local_cluster", "--workers", "2", "--ps", "1", "--"]
        + ["--data", planted, "--model_dir", model_dir, *TRAIN_FLAGS],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "in-process cluster: 2 worker(s), 1 ps" in result.stdout
    metrics, _ = _check_run(model_dir, planted)
    # model.local_cluster, not this test, asks model.train for the strategy.
    assert metrics["train_config"]["strategy"] == "parameter_server"
    # The workers' steps reached the parameters: the tasks' training loss fell.
    with open(os.path.join(model_dir, "history.csv")) as f:
        epochs = list(csv.DictReader(f))
    first, second = (sum(float(e[f"{task}_loss"]) for task in TASKS) for e in epochs)
    assert second < first - 0.01


def test_mirrored_strategy_in_process_trains_what_the_default_one_does(
    planted, default_run, tmp_path
):
    model_dir = str(tmp_path / "model")
    config = TrainConfig(strategy="mirrored", **TRAIN)
    train(planted, model_dir, ModelConfig(l2=False, **MODEL), config, verbose=0)
    _, predictions = _check_run(model_dir, planted)
    _assert_same_predictions(predictions, default_run, atol=1e-6)
