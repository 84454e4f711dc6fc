"""The tells audit: statistics read back from samples, per-user AUC, the CLI, leaky vs not."""

import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that
from sklearn.metrics import roc_auc_score

from beam_pipelines import audit, run
from beam_pipelines.pair_sampler import PairSampler
from beam_pipelines.records import Interaction
from contracts.layout import II, IU, TREES, UI, UU, SampleLayout
from synthetic import generator


def test_sample_statistics_are_read_back_from_the_written_sample():
    layout = SampleLayout((2, 1))
    graph = {
        (UI, "u0"): (("i1", "i2"), (1.0, 1.0)),
        (IU, "i1"): (("u4",), (1.0,)),
        (IU, "i0"): (("u1", "u2"), (1.0, 1.0)),
        (UI, "u1"): (("i7",), (1.0,)),
        (UU, "u0"): (("u1", "u3"), (0.9, 0.5)),
        (UU, "u3"): (("u0",), (0.5,)),
        (II, "i0"): (("i2", "i5"), (0.8, 0.1)),
    }
    sampler = PairSampler(layout, ("click",))
    pair = Interaction("u0", "i0", None, (1,))
    record = sampler.encode(pair, sampler.parts(TREES, "u0", "i0", graph.get))
    user, item, label, values = audit.SampleStatistics(layout, "click")(record)
    assert (user, item, label) == ("u0", "i0", 1)
    names = audit.statistic_names(layout)
    assert names[-1] == audit.ITEM_DEGREE  # joined from the graph, not read here
    assert dict(zip(names, values, strict=False)) == {
        "G_u_hop1_real": 2, "G_u_hop2_real": 1, "G_i_hop1_real": 2, "G_i_hop2_real": 1,
        "U_hop1_real": 2, "U_hop2_real": 1, "I_hop1_real": 2, "I_hop2_real": 0,
        "G_u_empty": 0, "G_i_empty": 0, "U_empty": 0, "I_empty": 0,
        "overlap_U_G_i": 1,  # u1 is both a similar user of u0 and a G neighbour of i0
        "overlap_I_G_u": 1,  # i2 is both a similar item of i0 and a G neighbour of u0
    }  # fmt: skip


def test_user_aucs_agree_with_sklearn_ties_included():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    values = np.stack([rng.integers(0, 3, 40), rng.normal(size=40), labels * 2.0], axis=1)
    got = audit.user_aucs(labels.tolist(), values)
    want = [roc_auc_score(labels, values[:, k]) for k in range(3)]
    np.testing.assert_allclose(got, want)
    assert got[2] == 1.0
    assert audit.user_aucs([1, 1], values[:2]) is None


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit_data")
    generator.generate(str(out), users=2000, items=500, seed=7, mean_exposures=15.0)
    return str(out)


def _preprocess(data_dir, out, *flags):
    args = ["--input", data_dir, "--output", out, "--nested_tasks", "--fanouts", "4,2"]
    assert run.main(["--runner", "FnApiRunner", *args, *flags]) == 0
    return json.load(open(os.path.join(out, "stats.json")))["audit"]


def test_leak_free_samples_pass_the_audit_and_shared_graphs_fail_it(data_dir, tmp_path, capsys):
    leak_free = _preprocess(data_dir, str(tmp_path / "leak_free"))
    names = audit.statistic_names(SampleLayout((4, 2)))
    assert leak_free["task"] == "click" and set(leak_free["gauc"]) == set(names)
    assert min(leak_free["users"].values()) > 100
    # A user's positives and negatives see identical user-side graphs.
    for name in names:
        if name.startswith(("G_u_", "U_")):
            assert set(leak_free["gauc"][name].values()) == {0.5}, name
    assert audit.main([str(tmp_path / "leak_free")]) == 0
    assert "agree within 0.02 on every statistic" in capsys.readouterr().out

    shared = _preprocess(data_dir, str(tmp_path / "shared"), "--graph_split", "shared")
    gauc = shared["gauc"]
    # A training positive's own edge: one G neighbour fewer, similar users who share its item.
    assert gauc["G_u_hop1_real"]["train"] < 0.3 and gauc["G_u_hop1_real"]["test"] == 0.5
    assert gauc["overlap_U_G_i"]["train"] - gauc["overlap_U_G_i"]["test"] > 0.1
    assert audit.main([str(tmp_path / "shared")]) == 1
    out = capsys.readouterr().out
    assert "overlap_U_G_i" in out and "<- tell" in out


def test_audit_cli_refuses_output_without_an_audit(tmp_path, capsys):
    (tmp_path / "stats.json").write_text(json.dumps({"config": {"fanouts": [2]}}))
    assert audit.main([str(tmp_path)]) == 2
    assert "has no audit" in capsys.readouterr().err
    assert audit.main([str(tmp_path / "missing")]) == 2


def test_audit_transform_weights_users_skips_one_class_ones_and_joins_the_degree():
    layout = SampleLayout((2,))
    edges = [("x", "i1"), ("y", "i1"), ("z", "i1"), ("x", "i2")]  # degrees: i1 3, i2 1, i3 0
    graph = {(IU, "i1"): (("x", "y", "z"), (1.0,) * 3), (IU, "i2"): (("x",), (1.0,))}
    sampler = PairSampler(layout, ("click",))

    def record(user, item, label):
        pair = Interaction(user, item, None, (label,))
        return sampler.encode(pair, sampler.parts(TREES, user, item, graph.get))

    train = [("uA", "i1", 1), ("uA", "i2", 0), ("uA", "i3", 0), ("uB", "i1", 0), ("uB", "i2", 1)]
    train += [("uC", "i1", 1), ("uC", "i2", 1)]  # one class only: skipped
    test = [("uD", "i1", 1), ("uD", "i3", 0)]
    batches = [("train", [record(*t) for t in train]), ("test", [record(*t) for t in test])]

    def check(stats):
        merged = {"gauc": {}, "users": {}}
        for key, value in stats:
            assert key == "audit"
            merged["task"] = value.get("task", merged.get("task"))
            merged["users"].update(value.get("users", {}))
            for name, by_split in value.get("gauc", {}).items():
                merged["gauc"].setdefault(name, {}).update(by_split)
        assert merged["task"] == "click" and merged["users"] == {"train": 2, "test": 1}
        gauc = merged["gauc"]
        # uA: its positive has the highest degree (AUC 1, 3 samples); uB: the lowest (AUC 0, 2).
        assert gauc[audit.ITEM_DEGREE] == {"train": 0.6, "test": 1.0}
        assert gauc["G_i_hop1_real"] == {"train": 0.6, "test": 1.0}  # 2, 1 and 0 real
        assert gauc["G_u_hop1_real"] == {"train": 0.5, "test": 0.5}  # no user has G edges

    with TestPipeline(runner="FnApiRunner") as p:
        stats = (
            p
            | "Batches" >> beam.Create(batches)
            | audit.AuditSamples(layout, "click", p | "Edges" >> beam.Create(edges))
        )
        assert_that(stats, check)
