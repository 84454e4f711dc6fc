"""A real chain for the serving tests: synthetic logs -> Beam -> a tiny trained model -> export.

Built once per test session (tracing a TF-GNN-sized model takes tens of
seconds): `pipeline_output` has graphs, samples and stats like any
`beam_pipelines.run` output; `exported` is the version directory of
`serving.export` on a 2-epoch MoGENet trained on it.
"""

import os

import pytest

from beam_pipelines import run
from model.config import ModelConfig, TrainConfig
from model.train import train
from synthetic import generator

TINY = dict(embedding_dim=8, expert_units=(8,))
FAST = dict(learning_rate=0.01, batch_size=64, epochs=2, seed=1, deterministic=True)


@pytest.fixture(scope="session")
def pipeline_output(tmp_path_factory):
    logs = str(tmp_path_factory.mktemp("logs"))
    generator.generate(logs, users=150, items=60, seed=3)
    out = str(tmp_path_factory.mktemp("chain") / "data")
    args = ["--input", logs, "--output", out, "--fanouts", "3,2", "--seed", "7"]
    assert run.main(["--runner", "FnApiRunner", *args]) == 0
    return out


@pytest.fixture(scope="session")
def trained_model(pipeline_output, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("chain") / "model")
    train(pipeline_output, model_dir, ModelConfig(**TINY), TrainConfig(**FAST), verbose=0)
    return model_dir


@pytest.fixture(scope="session")
def exported(pipeline_output, trained_model, tmp_path_factory):
    from serving.export import export

    base = str(tmp_path_factory.mktemp("chain") / "export")
    path = export(trained_model, pipeline_output, base, "mogenet")
    assert path == os.path.join(base, "mogenet", "1")
    return path
