"""Tests of the train/valid/test split."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.records import Interaction
from beam_pipelines.split import AssignSplits, time_cutoff


def test_time_cutoff_takes_the_newest_share():
    histogram = [(t, 1) for t in range(100)]
    assert time_cutoff(histogram, 0.2) == 80
    assert time_cutoff([(5, 3), (9, 1), (7, 6)], 0.5) == 7  # 1 + 6 rows >= 5
    assert time_cutoff([], 0.2) is None
    assert time_cutoff(histogram, 0.0) is None


def _rows(n=2000):
    return [Interaction(f"u{k % 97}", f"i{k}", k, (k % 2, 0)) for k in range(n)]


def _split_counts(pcoll):
    return pcoll | beam.Map(lambda kv: (kv[0], 1)) | beam.CombinePerKey(sum)


def test_time_split_puts_the_newest_rows_in_test():
    with TestPipeline(runner="FnApiRunner") as p:
        split = p | beam.Create(_rows()) | AssignSplits("auto", True, 0.25, 0.1, seed=3)
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
            split = p | beam.Create(rows) | AssignSplits("random", False, 0.2, 0.1, seed=seed)
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


def test_bad_settings():
    with pytest.raises(ValueError, match="needs timestamps"):
        AssignSplits("time", False)
    with pytest.raises(ValueError, match="unknown split mode"):
        AssignSplits("weekly", True)
    with pytest.raises(ValueError, match="test_fraction"):
        AssignSplits("auto", True, test_fraction=1.5)
