"""Hand-computed similarity on a tiny golden graph."""

import math

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.similarity import CollaborativeSimilarity, similarity

# u1:{i1,i2}  u2:{i1,i3}  u3:{i2}
EDGES = [("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "i3"), ("u3", "i2")]


def _rounded(triples):
    return sorted((a, b, round(w, 6)) for a, b, w in triples)


def test_similarity_measures():
    assert similarity(1, 2, 2) == pytest.approx(0.5)
    assert similarity(1, 2, 1) == pytest.approx(1 / math.sqrt(2))
    assert similarity(1, 2, 2, "jaccard") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="unknown similarity"):
        similarity(1, 1, 1, "dice")


@pytest.mark.parametrize(
    "measure, expected",
    [
        (
            "cosine",
            [
                ("u1", "u2", 0.5),
                ("u1", "u3", round(1 / math.sqrt(2), 6)),
                ("u2", "u1", 0.5),
                ("u3", "u1", round(1 / math.sqrt(2), 6)),
            ],
        ),
        (
            "jaccard",
            [
                ("u1", "u2", round(1 / 3, 6)),
                ("u1", "u3", 0.5),
                ("u2", "u1", round(1 / 3, 6)),
                ("u3", "u1", 0.5),
            ],
        ),
    ],
)
def test_user_similarity_by_hand(measure, expected):
    with TestPipeline(runner="FnApiRunner") as p:
        sims = (
            p
            | beam.Create(EDGES)
            | CollaborativeSimilarity(top_k=5, max_pivot_degree=10, seed=0, measure=measure)
            | beam.combiners.ToList()
            | beam.Map(_rounded)
        )
        assert_that(sims, equal_to([expected]))


def test_item_similarity_keeps_top_k():
    # i1:{u1,u2} i2:{u1,u3} i3:{u2}: sim(i1,i3)=1/sqrt(2) > sim(i1,i2)=1/2.
    with TestPipeline(runner="FnApiRunner") as p:
        sims = (
            p
            | beam.Create([(i, u) for u, i in EDGES])
            | CollaborativeSimilarity(top_k=1, max_pivot_degree=10, seed=0)
            | beam.combiners.ToList()
            | beam.Map(_rounded)
        )
        r = round(1 / math.sqrt(2), 6)
        assert_that(sims, equal_to([[("i1", "i3", r), ("i2", "i1", 0.5), ("i3", "i1", r)]]))


def test_hot_pivot_is_capped():
    # One item shared by 30 users: with a cap of 5 only C(5, 2) pairs are counted,
    # so exactly 5 users get a neighbour, each of the other 4.
    edges = [(f"u{k:02d}", "hot") for k in range(30)]
    with TestPipeline(runner="FnApiRunner") as p:
        sims = p | beam.Create(edges) | CollaborativeSimilarity(10, max_pivot_degree=5, seed=1)
        per_node = sims | beam.Map(lambda t: (t[0], 1)) | beam.CombinePerKey(sum) | beam.Values()
        assert_that(per_node, equal_to([4] * 5))
