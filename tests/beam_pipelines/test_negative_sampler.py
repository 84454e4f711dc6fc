"""Sampled negatives: unseen items, seeded, counted when short, uniform or by popularity."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from scipy import stats

from beam_pipelines.negative_sampler import AddSampledNegatives, Catalogue, sample_negatives
from beam_pipelines.records import Interaction

CATALOGUE = Catalogue.build([(f"i{k}", 1) for k in range(20)], alpha=None)


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
    rows = [Interaction("u", i, None, (1, 0)) for i in CATALOGUE.items[:19]]
    negatives, short = sample_negatives(rows, CATALOGUE, n=1, seed=0)
    assert [r.item_id for r in negatives] == [CATALOGUE.items[19]]
    assert short == 18


def test_transform_adds_negatives_for_every_user():
    rows = [Interaction(f"u{k}", f"i{k}", None, (1, 0)) for k in range(5)]
    with TestPipeline(runner="FnApiRunner") as p:
        all_rows, short = p | beam.Create(rows) | AddSampledNegatives(2, seed=4)
        counts = all_rows | beam.Map(lambda r: (r.labels == (1, 0), 1)) | beam.CombinePerKey(sum)
        assert_that(counts, equal_to([(True, 5), (False, 10)]), label="Counts")
        assert_that(short, equal_to([0]), label="Short")


def test_popularity_draws_in_proportion_to_rows_to_the_alpha():
    # i0 has 16 rows, i1..i4 one each: with alpha 0.5, i0 weighs 4 against 1 each.
    catalogue = Catalogue.build([("i0", 16), *((f"i{k}", 1) for k in range(1, 5))], alpha=0.5)
    assert catalogue.cumulative == (4.0, 5.0, 6.0, 7.0, 8.0)
    rows = [Interaction(f"u{k}", "i9", None, (1,)) for k in range(4000)]
    drawn = [sample_negatives([r], catalogue, n=1, seed=3)[0][0].item_id for r in rows]
    hot = drawn.count("i0")
    assert stats.binomtest(hot, len(drawn), 0.5).pvalue > 1e-3
    assert {f"i{k}" for k in range(5)} == set(drawn)
    uniform = Catalogue.build([("i0", 16), *((f"i{k}", 1) for k in range(1, 5))], alpha=None)
    drawn = [sample_negatives([r], uniform, n=1, seed=3)[0][0].item_id for r in rows]
    assert stats.binomtest(drawn.count("i0"), len(drawn), 0.2).pvalue > 1e-3


def test_popularity_negatives_are_unseen_and_seeded():
    catalogue = Catalogue.build([(f"i{k}", 100 if k < 3 else 1) for k in range(20)], alpha=0.75)
    rows = [Interaction("u", "i0", 1, (1,)), Interaction("u", "i1", 2, (1,))]
    negatives, short = sample_negatives(rows, catalogue, n=5, seed=1)
    items = [r.item_id for r in negatives]
    assert short == 0 and len(set(items)) == 10 and not set(items) & {"i0", "i1"}
    assert sample_negatives(rows, catalogue, 5, seed=1)[0] == negatives


def test_transform_popularity_counts_rows_per_item():
    # u0..u9 all used i0 (10 rows); i1 has one row. Negatives of u10's row on i1
    # come from items it has not seen: only i0, drawn by popularity.
    rows = [Interaction(f"u{k}", "i0", None, (1,)) for k in range(10)]
    rows += [Interaction("u10", "i1", None, (1,))]
    with TestPipeline(runner="FnApiRunner") as p:
        all_rows, short = (
            p | beam.Create(rows) | AddSampledNegatives(1, seed=0, distribution="popularity")
        )
        negatives = all_rows | beam.Filter(lambda r: r.labels == (0,))
        assert_that(
            negatives | beam.Map(lambda r: (r.user_id, r.item_id)),
            equal_to([("u10", "i0")] + [(f"u{k}", "i1") for k in range(10)]),
            label="Negatives",
        )
        assert_that(short, equal_to([0]), label="Short")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"distribution": "zipf"}, "unknown negative sampling"),
        ({"distribution": "popularity", "alpha": 0.0}, "exponent must be > 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AddSampledNegatives(1, seed=0, **kwargs)
