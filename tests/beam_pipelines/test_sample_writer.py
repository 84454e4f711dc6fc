"""WriteSamples: every record written once, each split mixed whatever the input order."""

from __future__ import annotations

import itertools

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from scipy import stats

from beam_pipelines.sample_writer import WriteSamples
from tests.beam_pipelines.sample_reader import read_split_records

N = 400  # records per label in train


def _label_ordered_batches():
    """Train: all positives, then all negatives, in batches of 50 as a sampler emits."""
    records = [b"pos-%03d" % k for k in range(N)] + [b"neg-%03d" % k for k in range(N)]
    batches = [("train", records[k : k + 50]) for k in range(0, len(records), 50)]
    return batches + [("valid", [b"valid-a", b"valid-b"])]


def _write(out, seed):
    with TestPipeline(runner="FnApiRunner") as p:
        counts = p | beam.Create(_label_ordered_batches()) | WriteSamples(str(out), seed)
        assert_that(counts, equal_to([("train", 2 * N), ("valid", 2)]))
    return read_split_records(str(out))


def test_each_record_is_written_once(tmp_path):
    written = _write(tmp_path / "out", seed=0)
    expected = [r for _, batch in _label_ordered_batches() for r in batch]
    assert sorted(written["train"] + written["valid"]) == sorted(expected)
    assert written["test"] == []


def test_a_label_ordered_split_is_written_mixed(tmp_path):
    train = _write(tmp_path / "out", seed=0)["train"]
    positive = [r.startswith(b"pos") for r in train]
    # As written before the mix, the first half would be all positives.
    first, second = positive[:N], positive[N:]
    table = [[sum(first), N - sum(first)], [sum(second), N - sum(second)]]
    assert stats.fisher_exact(table).pvalue > 0.01
    # No long runs: the longest run of one label is what a shuffle gives.
    longest = max(len(list(run)) for _, run in itertools.groupby(positive))
    assert longest < 20


def test_the_order_follows_the_seed(tmp_path):
    a = _write(tmp_path / "a", seed=0)["train"]
    b = _write(tmp_path / "b", seed=0)["train"]
    c = _write(tmp_path / "c", seed=1)["train"]
    assert a == b
    assert a != c and sorted(a) == sorted(c)


def test_small_buckets_still_mix(tmp_path):
    with TestPipeline(runner="FnApiRunner") as p:
        _ = p | beam.Create(_label_ordered_batches()) | WriteSamples(str(tmp_path), 0, 100)
    train = read_split_records(str(tmp_path))["train"]
    assert sorted(train) == sorted(
        r for s, b in _label_ordered_batches() if s == "train" for r in b
    )
    first = sum(r.startswith(b"pos") for r in train[:N])
    assert stats.binomtest(first, N, 0.5).pvalue > 0.01


def test_bad_bucket_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="records_per_bucket must be >= 1"):
        WriteSamples(str(tmp_path), records_per_bucket=0)
