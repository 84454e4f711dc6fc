"""Tests of the train/valid/test split."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.config import PreprocessConfig
from beam_pipelines.hashing import uniform
from beam_pipelines.records import Interaction, pair_key
from beam_pipelines.split import AssignSplits, SplitGraphRows, time_cutoff


def test_time_cutoff_takes_the_newest_share():
    histogram = [(t, 1) for t in range(100)]
    assert time_cutoff(histogram, 0.2) == 80
    assert time_cutoff([(5, 3), (9, 1), (7, 6)], 0.5) == 7  # 1 + 6 rows >= 5
    assert time_cutoff([], 0.2) is None
    assert time_cutoff(histogram, 0.0) is None


def _config(**settings):
    return PreprocessConfig(output="unused", **settings)


def _rows(n=2000):
    return [Interaction(f"u{k % 97}", f"i{k}", k, (k % 2, 0)) for k in range(n)]


def _split_counts(pcoll):
    return pcoll | beam.Map(lambda kv: (kv[0], 1)) | beam.CombinePerKey(sum)


def test_time_split_puts_the_newest_rows_in_test():
    with TestPipeline(runner="FnApiRunner") as p:
        split = (
            p
            | beam.Create(_rows())
            | AssignSplits(
                _config(split="auto", test_fraction=0.25, valid_fraction=0.1, seed=3), True
            )
        )
        oldest_test = (
            split
            | beam.Filter(lambda kv: kv[0] == "test")
            | beam.Map(lambda kv: kv[1].timestamp)
            | beam.CombineGlobally(min)
        )
        newest_other = (
            split
            | "Other" >> beam.Filter(lambda kv: kv[0] != "test")
            | "OtherTime" >> beam.Map(lambda kv: kv[1].timestamp)
            | "Max" >> beam.CombineGlobally(max)
        )
        assert_that(oldest_test, equal_to([1500]), label="OldestTest")
        assert_that(newest_other, equal_to([1499]), label="NewestOther")
        valid = (
            split
            | "Valid" >> beam.Filter(lambda kv: kv[0] == "valid")
            | beam.combiners.Count.Globally()
            | beam.Map(lambda n: 100 < n < 200)  # 10% of 1500, give or take
        )
        assert_that(valid, equal_to([True]), label="ValidShare")


def test_random_split_is_seeded_and_keeps_a_pair_together(tmp_path):
    rows = _rows() + [Interaction("u1", "i1", None, (1, 1))] * 5
    runs = []
    for seed in (1, 1, 2):
        with TestPipeline(runner="FnApiRunner") as p:
            split = (
                p
                | beam.Create(rows)
                | AssignSplits(
                    _config(split="random", test_fraction=0.2, valid_fraction=0.1, seed=seed), False
                )
            )
            same_pair = (
                split
                | beam.Filter(lambda kv: kv[1].item_id == "i1" and kv[1].user_id == "u1")
                | beam.Keys()
                | beam.Distinct()
                | beam.combiners.Count.Globally()
            )
            assert_that(same_pair, equal_to([1]), label="OneSplitPerPair")
            shares = (
                _split_counts(split)
                | beam.combiners.ToDict()
                | beam.Map(lambda d: (d["train"] > d["test"] > d["valid"] > 0, d))
            )
            assert_that(shares | beam.Map(lambda t: t[0]), equal_to([True]), label="Shares")
            keys = split | "ItemSplit" >> beam.Map(lambda kv: (kv[1].item_id, kv[0]))
            path = str(tmp_path / f"split-{seed}-{len(runs)}")
            keys | beam.Map(repr) | beam.io.WriteToText(path, num_shards=1)
            runs.append(path)
    texts = [sorted(open(f"{r}-00000-of-00001").read().splitlines()) for r in runs]
    assert texts[0] == texts[1] and texts[0] != texts[2]


def test_time_split_needs_timestamps():
    # Bad values (unknown modes, fractions out of range) are refused by the
    # config itself: tests/beam_pipelines/test_config.py.
    with pytest.raises(ValueError, match="needs timestamps"):
        AssignSplits(_config(split="time"), False)


def _check_sides(rows, mode, check, has_time=True, fraction=0.5, seed=0):
    """Runs SplitGraphRows and calls check(graph rows, supervising rows, disjoint)."""
    with TestPipeline(runner="FnApiRunner") as p:
        divided = (
            p
            | beam.Create(rows)
            | SplitGraphRows(
                _config(graph_split=mode, graph_fraction=fraction, seed=seed), has_time
            )
        )
        tagged = (
            divided.graph | "G" >> beam.Map(lambda r: ("graph", r)),
            divided.supervise | "S" >> beam.Map(lambda r: ("supervise", r)),
        ) | beam.Flatten()

        def matcher(actual, disjoint=divided.disjoint):
            sides = {"graph": [], "supervise": []}
            for side, row in actual:
                sides[side].append(row)
            check(sorted(sides["graph"]), sorted(sides["supervise"]), disjoint)

        assert_that(tagged, matcher)


def test_time_graph_split_builds_graphs_from_the_oldest_rows():
    def check(graph, supervise, disjoint):
        assert disjoint and len(graph) == 600 and len(supervise) == 1400
        assert max(r.timestamp for r in graph) < min(r.timestamp for r in supervise)

    _check_sides(_rows(), "time", check, fraction=0.3)


def test_random_graph_split_is_seeded_disjoint_and_keeps_a_pair_together():
    rows = _rows() + [r._replace(timestamp=r.timestamp + 5000) for r in _rows()[:300]]

    def expected(seed):  # the contract: a seeded hash of the pair decides
        return {
            (r.user_id, r.item_id)
            for r in rows
            if uniform(seed, "graph", pair_key(r.user_id, r.item_id)) < 0.4
        }

    def check(graph, supervise, disjoint, seed):
        assert disjoint and len(graph) + len(supervise) == len(rows)
        pairs = [{(r.user_id, r.item_id) for r in side} for side in (graph, supervise)]
        assert not pairs[0] & pairs[1]  # both exposures of a pair on one side
        assert pairs[0] == expected(seed) and 0.35 < len(pairs[0]) / 2000 < 0.45

    assert expected(1) != expected(2)
    for seed in (1, 2):
        _check_sides(
            rows, "random", lambda *a, seed=seed: check(*a, seed), has_time=False, fraction=0.4,
            seed=seed,
        )  # fmt: skip


def test_shared_graph_split_uses_every_row_for_both():
    def check(graph, supervise, disjoint):
        assert not disjoint and graph == supervise == sorted(_rows(50))

    _check_sides(_rows(50), "shared", check)


def test_time_graph_split_needs_timestamps():
    with pytest.raises(ValueError, match="needs timestamps"):
        SplitGraphRows(_config(graph_split="time"), False)
