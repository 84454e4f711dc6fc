"""Collaborative similarity graphs G^U and G^I (paper §2, graph construction).

Two users are similar when they interacted with the same items (two items when
the same users interacted with them). The similarity is the cosine of the
binary interaction vectors (default) or their Jaccard index:

  cosine(a, b)  = |N(a) ∩ N(b)| / sqrt(|N(a)| · |N(b)|)
  jaccard(a, b) = |N(a) ∩ N(b)| / |N(a) ∪ N(b)|

where N(x) is x's neighbour set in the bipartite graph G. Each node keeps its
top-k most similar nodes with the similarity as edge weight. Co-occurrences are
counted per "pivot" (the item shared by two users, or the user shared by two
items); a pivot with more than `max_pivot_degree` neighbours contributes only a
seeded sample of that many, so the job is O(Σ min(d, cap)²) and not quadratic
in the most popular node. Degrees in the denominators are the full degrees.
"""

from __future__ import annotations

import math

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipelines.hashing import hash64

COSINE = "cosine"
JACCARD = "jaccard"
MEASURES = (COSINE, JACCARD)


def similarity(common: int, degree_a: int, degree_b: int, measure: str = COSINE) -> float:
    """Returns the similarity of two nodes from their common and own degrees.

    Args:
      common: Number of shared neighbours.
      degree_a: Degree of the first node.
      degree_b: Degree of the second node.
      measure: "cosine" or "jaccard".

    Returns:
      The similarity in (0, 1].

    Raises:
      ValueError: For an unknown measure.
    """
    if measure == COSINE:
        return common / math.sqrt(degree_a * degree_b)
    if measure == JACCARD:
        return common / (degree_a + degree_b - common)
    raise ValueError(f"unknown similarity {measure!r}; choose one of {MEASURES}")


class _CoOccurrences(beam.DoFn):
    """(pivot, [(node, degree)]) -> ((a, b, degree a, degree b), shared pivots).

    Counts are summed in the DoFn across a bundle's pivots (flushed every
    `flush_at` distinct pairs) before they are emitted: one element per pair
    and pivot was the similarity job's main cost.
    """

    def __init__(self, cap: int, seed: int, flush_at: int = 1_000_000):
        self.cap = cap
        self.seed = seed
        self.flush_at = flush_at
        self.capped = beam.metrics.Metrics.counter("similarity", "capped_pivots")

    def start_bundle(self):
        self.counts: dict[tuple, int] = {}

    def process(self, kv):
        pivot, members = kv
        members = sorted(members)
        if len(members) > self.cap:
            self.capped.inc()
            members = sorted(members, key=lambda m: hash64(self.seed, "cap", pivot, m[0]))
            members = sorted(members[: self.cap])
        counts = self.counts
        for x in range(len(members)):
            a, degree_a = members[x]
            for b, degree_b in members[x + 1 :]:
                key = (a, b, degree_a, degree_b)
                counts[key] = counts.get(key, 0) + 1
        if len(counts) >= self.flush_at:
            yield from counts.items()
            self.counts = {}

    def finish_bundle(self):
        for item in self.counts.items():
            yield WindowedValue(item, MIN_TIMESTAMP, [GlobalWindow()])
        self.counts = {}


class CollaborativeSimilarity(beam.PTransform):
    """Top-k collaborative similarity between the nodes on one side of G.

    Input: G's edges as (node, pivot) pairs, e.g. (user, item) for G^U or
    (item, user) for G^I; each distinct. Output: (node, neighbor, similarity)
    triples, at most `top_k` per node. Beam counter `capped_pivots` counts the
    pivots whose neighbour lists were sampled down.

    Args:
      top_k: Neighbours kept per node.
      max_pivot_degree: Cap on the neighbours a pivot contributes.
      seed: Seed of the cap's sample.
      measure: "cosine" or "jaccard".
    """

    def __init__(self, top_k: int, max_pivot_degree: int, seed: int, measure: str = COSINE):
        super().__init__()
        if measure not in MEASURES:
            raise ValueError(f"unknown similarity {measure!r}; choose one of {MEASURES}")
        if top_k < 1 or max_pivot_degree < 2:
            raise ValueError("top_k must be >= 1 and max_pivot_degree >= 2")
        self.top_k = top_k
        self.cap = max_pivot_degree
        self.seed = seed
        self.measure = measure

    def expand(self, edges):
        cap, seed, measure = self.cap, self.seed, self.measure

        def with_degree(kv):
            node, pivots = kv
            pivots = list(pivots)
            for pivot in pivots:
                yield pivot, (node, len(pivots))

        def both_directions(kv):
            (a, b, degree_a, degree_b), common = kv
            sim = similarity(common, degree_a, degree_b, measure)
            yield a, (sim, b)
            yield b, (sim, a)

        return (
            edges
            | "GroupByNode" >> beam.GroupByKey()
            | "WithDegree" >> beam.FlatMap(with_degree)
            | "GroupByPivot" >> beam.GroupByKey()
            | "CoOccurrences" >> beam.ParDo(_CoOccurrences(cap, seed))
            | "Count" >> beam.CombinePerKey(sum)
            | "Similarity" >> beam.FlatMap(both_directions)
            | "TopK" >> beam.combiners.Top.LargestPerKey(self.top_k)
            | "Flatten" >> beam.FlatMap(lambda kv: [(kv[0], b, sim) for sim, b in kv[1]])
        )
