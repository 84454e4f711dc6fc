"""`python -m model.train` end to end on the planted-graph fixture."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from model import graph_init, trained
from model.config import ModelConfig, TrainConfig
from model.input_pipeline import DataError
from model.train import main, make_early_stopping, train
from tests.model.planted import write_planted

TINY = dict(embedding_dim=8, expert_units=(8,))
FAST = dict(learning_rate=0.01, batch_size=64, patience=20, seed=1, deterministic=True)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted(tmp_path_factory.mktemp("planted"))


def test_learns_a_planted_graph_signal_that_mmoe_cannot(planted, tmp_path):
    """Only the neighbourhoods say whether user and item share a community."""
    result = train(
        planted,
        str(tmp_path / "mogenet"),
        ModelConfig(**TINY),
        TrainConfig(epochs=8, jit_compile=True, **FAST),
        verbose=0,
    )
    assert result["test"]["click"]["auc"] > 0.9
    assert result["test"]["click"]["gauc"] > 0.9
    written = json.loads((tmp_path / "mogenet" / "metrics.json").read_text())
    assert written["test"]["click"]["auc"] == result["test"]["click"]["auc"]
    assert set(written["test"]["click"]) == {"auc", "gauc", "log_loss", "examples", "positives"}
    model, _ = trained.load(str(tmp_path / "mogenet"))
    assert model.task_names == ("click", "conversion")

    mmoe = train(
        planted,
        str(tmp_path / "mmoe"),
        ModelConfig(graph_experts=0, **TINY),
        TrainConfig(epochs=4, jit_compile=False, **FAST),
        verbose=0,
    )
    assert abs(mmoe["test"]["click"]["auc"] - 0.5) < 0.1


def test_stops_early_on_validation_gauc_and_logs_it_for_tensorboard(planted, tmp_path):
    # With a learning rate of 0 the validation GAUC never improves after
    # epoch 1, so patience 1 must end the run after its second epoch.
    model_dir = tmp_path / "still"
    config = TrainConfig(
        epochs=6, jit_compile=False, **{**FAST, "learning_rate": 0.0, "patience": 1}
    )
    result = train(planted, str(model_dir), ModelConfig(**TINY), config, verbose=0)
    assert result["epochs_run"] == 2
    assert (result["monitor"], result["best_epoch"]) == ("val_gauc", 1)
    tags = {}
    for split in ("train", "validation"):
        tags[split] = set()
        for events in (model_dir / "logs" / split).glob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(events)):
                tags[split].update(value.tag for value in event.summary.value)
    for task in ("click", "conversion"):
        assert {f"epoch_{task}_gauc", f"epoch_{task}_auc", "epoch_gauc"} <= tags["validation"]
        train_tags = {f"epoch_{task}_loss", f"epoch_sigma_{task}"}
        train_tags |= {f"epoch_gate_{task}_expert{n}" for n in range(4)}
        assert train_tags <= tags["train"], sorted(tags["train"])


@pytest.mark.parametrize(
    "monitor, values, stopped_after, best_epoch",
    [
        ("log_loss", [0.50, 0.40, 0.45, 0.46, 0.30], 4, 2),  # lower is better
        ("auc", [0.50, 0.40, 0.45, 0.46, 0.30], 3, 1),
        ("gauc", [0.50, 0.60, 0.55, 0.70, 0.65], 5, 4),
    ],
)
def test_early_stopping_follows_the_monitored_signal(monitor, values, stopped_after, best_epoch):
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(1,))])
    callback = make_early_stopping(TrainConfig(monitor=monitor, patience=2))
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        # Every signal is in the logs; only the monitored one may decide.
        logs = {"val_gauc": 0.5, "val_auc": 0.5, "val_log_loss": 0.5, f"val_{monitor}": value}
        callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    assert callback.monitor == f"val_{monitor}"
    assert (epoch + 1, callback.best_epoch + 1) == (stopped_after, best_epoch)


def test_an_unknown_monitor_is_refused():
    with pytest.raises(ValueError, match="monitor"):
        TrainConfig(monitor="loss")


class _Crash(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise RuntimeError("simulated crash")


def test_resumes_after_a_crash_from_the_last_finished_epoch(planted, tmp_path):
    model_dir = str(tmp_path / "run")
    config = TrainConfig(epochs=3, jit_compile=False, **FAST)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(
            planted, model_dir, ModelConfig(**TINY), config, verbose=0, extra_callbacks=[_Crash()]
        )
    assert os.path.isdir(os.path.join(model_dir, "backup"))
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))
    result = train(planted, model_dir, ModelConfig(**TINY), config, verbose=0)
    with open(os.path.join(model_dir, "history.csv")) as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2]
    assert result["epochs_run"] == 3  # every epoch in history.csv, before and after the crash
    assert os.path.exists(os.path.join(model_dir, "metrics.json"))
    logs = os.listdir(os.path.join(model_dir, "logs"))
    assert {"train", "validation"} <= set(logs)
    with pytest.raises(DataError, match="holds a finished run"):
        train(planted, model_dir, ModelConfig(**TINY), config, verbose=0)
    assert os.path.exists(os.path.join(model_dir, "metrics.json"))


def _error(capsys, *argv):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("model.train: error: ")
    return err


def test_bad_input_gets_a_one_line_error(planted, tmp_path, capsys):
    out = str(tmp_path / "model")
    assert "no such data directory" in _error(
        capsys, "--data", str(tmp_path / "nope"), "--model_dir", out
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no graph_schema.pbtxt" in _error(capsys, "--data", str(empty), "--model_dir", out)
    assert "label_purchase" in _error(
        capsys, "--data", planted, "--model_dir", out, "--tasks", "click,purchase"
    )
    partial = tmp_path / "partial"
    shutil.copytree(planted, partial)
    shutil.rmtree(partial / "test")
    assert "no examples" in _error(capsys, "--data", str(partial), "--model_dir", out)
    hollow = tmp_path / "hollow"  # shards there, but with no records in them
    shutil.copytree(planted, hollow)
    for path in (hollow / "valid").glob("*.tfrecord*"):
        path.write_bytes(b"")
    stats = hollow / "stats.json"
    if stats.exists():
        stats.unlink()  # counted from the shards, as for outputs without stats
    assert "valid split" in _error(capsys, "--data", str(hollow), "--model_dir", out)
    garbled = tmp_path / "garbled"
    shutil.copytree(planted, garbled)
    (garbled / "graph_schema.pbtxt").write_text("node_sets { oops")
    assert "is not a GraphSchema" in _error(capsys, "--data", str(garbled), "--model_dir", out)
    assert "kappa" in _error(capsys, "--data", planted, "--model_dir", out, "--kappa", "dot")
    assert "graph_norm must be one of" in _error(
        capsys, "--data", planted, "--model_dir", out, "--graph_norm", "batch"
    )
    assert "needs --optimizer row_sparse_adam" in _error(
        capsys, "--data", planted, "--model_dir", out, "--optimizer", "adam",
        "--embedding_lr_scale", "10",
    )  # fmt: skip
    assert "unknown --model" in _error(
        capsys, "--data", planted, "--model_dir", out, "--model", "x"
    )
    assert not os.path.exists(out)


def test_embedding_init_graph_starts_from_g(planted, tmp_path, capsys):
    """With a learning rate of 0 the saved id rows are exactly the graph initialisation."""
    out = str(tmp_path / "model")
    assert "no graphs/bipartite" in _error(
        capsys, "--data", planted, "--model_dir", out, "--embedding_init", "graph"
    )
    assert "embedding_init must be one of" in _error(
        capsys, "--data", planted, "--model_dir", out, "--embedding_init", "svd"
    )
    data = tmp_path / "data"
    shutil.copytree(planted, data)
    (data / "graphs").mkdir(exist_ok=True)
    edges = [
        (f"ua{c}_{u}", f"ia{c}_{i}") for c in (0, 1) for u in range(6) for i in range(6) if u != i
    ]
    (data / "graphs" / "bipartite-00000-of-00001.tsv").write_text(
        "".join(f"{u}\t{i}\n" for u, i in edges)
    )
    config = TrainConfig(
        epochs=1,
        jit_compile=False,
        embedding_init="graph",
        embedding_init_rank=3,
        **{**FAST, "learning_rate": 0.0},
    )
    train(str(data), out, ModelConfig(**TINY), config, verbose=0)
    model, entities = trained.load(out)
    p, q = graph_init.ppmi_embeddings(edges, entities["user"], entities["item"], 3, seed=1)
    assert len(p) == 12 and len(q) == 12
    for node_set, vectors in (("user", p), ("item", q)):
        table = model.encoders[node_set].id_embedding.numpy()
        for row, vector in vectors.items():
            np.testing.assert_allclose(table[row, :3], vector, rtol=1e-5, atol=1e-7)
