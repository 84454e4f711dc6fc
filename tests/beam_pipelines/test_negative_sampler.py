"""Sampled negatives: unseen items, seeded, counted when short."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.negative_sampler import AddSampledNegatives, sample_negatives
from beam_pipelines.records import Interaction

CATALOGUE = [f"i{k}" for k in range(20)]


def test_negatives_are_unseen_distinct_and_seeded():
    rows = [Interaction("u", "i0", 7, (1, 0)), Interaction("u", "i1", 8, (1, 1))]
    rows.append(Interaction("u", "i2", 9, (0, 0)))  # not a positive: no negatives
    negatives, short = sample_negatives(rows, CATALOGUE, n=3, seed=1)
    assert short == 0 and len(negatives) == 6
    items = [r.item_id for r in negatives]
    assert len(set(items)) == 6 and not set(items) & {"i0", "i1", "i2"}
    assert all(r.labels == (0, 0) and r.user_id == "u" for r in negatives)
    assert {r.timestamp for r in negatives} == {7, 8}
    assert sample_negatives(rows, CATALOGUE, 3, seed=1)[0] == negatives
    assert sample_negatives(rows, CATALOGUE, 3, seed=2)[0] != negatives


def test_short_when_the_user_has_seen_almost_everything():
    rows = [Interaction("u", i, None, (1, 0)) for i in CATALOGUE[:19]]
    negatives, short = sample_negatives(rows, CATALOGUE, n=1, seed=0)
    assert [r.item_id for r in negatives] == ["i19"]
    assert short == 18


def test_transform_adds_negatives_for_every_user():
    rows = [Interaction(f"u{k}", f"i{k}", None, (1, 0)) for k in range(5)]
    with TestPipeline(runner="FnApiRunner") as p:
        all_rows, short = p | beam.Create(rows) | AddSampledNegatives(2, seed=4)
        counts = all_rows | beam.Map(lambda r: (r.labels == (1, 0), 1)) | beam.CombinePerKey(sum)
        assert_that(counts, equal_to([(True, 5), (False, 10)]), label="Counts")
        assert_that(short, equal_to([0]), label="Short")
