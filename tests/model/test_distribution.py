"""Distributed training: two loopback workers, and a parameter-server cluster."""

import json
import os
import subprocess
import sys

import pytest

from model.local_cluster import free_port
from tests.model.planted import write_planted

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


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted(
        tmp_path_factory.mktemp("planted"), sizes={"train": 512, "valid": 128, "test": 128}
    )


def _env(**extra):
    return {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _check_run(model_dir, epochs=2):
    metrics = json.loads(open(os.path.join(model_dir, "metrics.json")).read())
    assert metrics["epochs_run"] == epochs
    for task in ("click", "conversion"):
        assert 0.0 <= metrics["test"][task]["auc"] <= 1.0
    assert os.path.exists(os.path.join(model_dir, "model.json"))
    return metrics


def test_multi_worker_mirrored_on_two_loopback_workers(planted, tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    model_dir = str(tmp_path / "model")
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "model.train", "--data", planted, "--model_dir", model_dir]
                + ["--strategy", "multi_worker", *TRAIN_FLAGS],
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
    metrics = _check_run(model_dir)
    assert metrics["train_config"]["strategy"] == "multi_worker"
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
    metrics = _check_run(model_dir)
    assert metrics["train_config"]["strategy"] == "parameter_server"


def test_mirrored_strategy_in_process(planted, tmp_path):
    from model.config import ModelConfig, TrainConfig
    from model.train import train

    config = TrainConfig(
        epochs=1, strategy="mirrored", jit_compile=False, batch_size=64, learning_rate=0.01
    )
    result = train(
        planted, str(tmp_path / "model"), ModelConfig(embedding_dim=8), config, verbose=0
    )
    assert result["train_config"]["strategy"] == "mirrored"
    _check_run(str(tmp_path / "model"), epochs=1)
