"""MixOrder, and a whole job whose input comes in label order writing mixed files."""

from __future__ import annotations

import itertools
import json
import os

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from scipy import stats

from beam_pipelines import run
from beam_pipelines.mixing import MixOrder
from beam_pipelines.records import Interaction
from tests.beam_pipelines.sample_reader import parse, read_split_records

N = 400  # pairs per label


def _label_ordered_pairs():
    """Train: every positive, then every negative, as a behaviours job reads them."""
    return [
        ("train", Interaction(f"u{k % 50}", f"{kind}{k}", None, (int(kind == "p"),)))
        for kind in ("p", "n")
        for k in range(N)
    ]


def _mixed(seed, tmp_path, per_bucket=10_000):
    """Returns the pairs in the order MixOrder emits them (written to one text shard)."""
    prefix = str(tmp_path / f"mixed-{seed}-{per_bucket}")
    with TestPipeline(runner="FnApiRunner") as p:
        mixed = p | beam.Create(_label_ordered_pairs()) | MixOrder(seed, per_bucket)
        assert_that(mixed, equal_to(_label_ordered_pairs()))
        _ = (
            mixed
            | beam.MapTuple(lambda split, row: f"{split} {row.item_id} {row.labels[0]}")
            | beam.io.WriteToText(prefix, num_shards=1, shard_name_template="")
        )
    with open(prefix) as f:
        return [line.split() for line in f.read().splitlines()]


def _halves_agree(labels):
    first, second = labels[: len(labels) // 2], labels[len(labels) // 2 :]
    table = [[sum(first), len(first) - sum(first)], [sum(second), len(second) - sum(second)]]
    return stats.fisher_exact(table).pvalue > 0.01


def _longest_run(labels):
    return max(len(list(run)) for _, run in itertools.groupby(labels))


def test_label_ordered_pairs_come_out_mixed_and_whole(tmp_path):
    labels = [int(label) for _, _, label in _mixed(0, tmp_path)]
    assert len(labels) == 2 * N  # (and equal_to above: the same pairs, each once)
    assert _halves_agree(labels)
    assert _longest_run(labels) < 20  # unmixed, one run would be 400 long


def test_small_buckets_still_mix(tmp_path):
    labels = [int(label) for _, _, label in _mixed(0, tmp_path, per_bucket=100)]
    assert _halves_agree(labels) and _longest_run(labels) < 20


def test_the_order_follows_the_seed(tmp_path):
    (tmp_path / "again").mkdir()
    a = _mixed(0, tmp_path)
    assert a == _mixed(0, tmp_path / "again")
    c = _mixed(1, tmp_path)
    assert a != c and sorted(a) == sorted(c)


def test_bad_bucket_size_is_refused():
    with pytest.raises(ValueError, match="pairs_per_bucket must be >= 1"):
        MixOrder(0, pairs_per_bucket=0)


def test_a_job_fed_in_label_order_writes_mixed_training_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    # One behaviour file after the other, as the MBGCN Tmall files are laid out.
    collect = [f"{u} {(7 * u + k) % 97}" for u in range(300) for k in range(2)]
    buy = [f"{u} {(7 * u + k + 40) % 97}" for u in range(300) for k in range(2)]
    (data / "collect.txt").write_text("\n".join(collect) + "\n")
    (data / "buy.txt").write_text("\n".join(buy) + "\n")
    out = tmp_path / "out"
    code = run.main(
        [
            "--runner", "FnApiRunner", "--input", str(data), "--output", str(out),
            "--format", "behaviors", "--behavior_files", "favorite=collect.txt,purchase=buy.txt",
            "--negatives_per_positive", "1", "--fanouts", "2,1",
        ]
    )  # fmt: skip
    assert code == 0
    assert json.load(open(os.path.join(out, "stats.json")))["samples"]["train"] > 300
    train = [parse(r) for r in read_split_records(str(out))["train"]]
    for task in ("favorite", "purchase"):
        labels = [s[f"context/label_{task}"][0] for s in train]
        assert _halves_agree(labels), task
        assert _longest_run(labels) < 25, task
