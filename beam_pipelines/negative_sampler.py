"""Sampled negatives for logs that hold only positives.

For each positive row (any label 1) of a user, `n` items the user never
interacted with are drawn from the item catalogue (all items in the log) with a
seeded hash, and added as rows with every label 0 and the positive's timestamp.
Two distributions (`--negative_sampling`):

  * ``uniform``: every catalogue item equally likely;
  * ``popularity``: an item in proportion to ``rows ** alpha``, its number of
    rows in the log raised to `alpha` (0.75 by default, word2vec's choice).
    Positives follow popularity, so uniform negatives are easier than the
    candidates a retrieval stage hands a ranker: with uniform negatives the
    item's degree alone separates them. Popularity negatives remove most of
    that shortcut.

A user who has seen (nearly) every item gets fewer; the shortfall is counted in
the `negatives_short` statistic.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from typing import NamedTuple

import apache_beam as beam

from beam_pipelines.hashing import hash64
from beam_pipelines.records import Interaction

UNIFORM = "uniform"
POPULARITY = "popularity"
DISTRIBUTIONS = (UNIFORM, POPULARITY)

_MAX_TRIES_PER_NEGATIVE = 20
_TWO_64 = float(2**64)


class Catalogue(NamedTuple):
    """The items negatives are drawn from.

    Attributes:
      items: Every item id, sorted.
      cumulative: Cumulative sampling weights aligned with `items`, or None for
        uniform draws.
    """

    items: tuple[str, ...]
    cumulative: tuple[float, ...] | None = None

    @classmethod
    def build(cls, counts: Iterable[tuple[str, int]], alpha: float | None) -> Catalogue:
        """Makes a catalogue from (item, rows) pairs.

        Args:
          counts: Each item with its number of rows in the log.
          alpha: Popularity exponent; None draws uniformly.
        """
        ordered = sorted(counts)
        items = tuple(item for item, _ in ordered)
        if alpha is None:
            return cls(items)
        weights = (float(n) ** alpha for _, n in ordered)
        return cls(items, tuple(itertools.accumulate(weights)))

    def draw(self, h: int) -> str:
        """Returns the item that the 64-bit hash `h` picks."""
        if self.cumulative is None:
            return self.items[h % len(self.items)]
        x = h / _TWO_64 * self.cumulative[-1]
        return self.items[min(bisect.bisect_right(self.cumulative, x), len(self.items) - 1)]


def sample_negatives(
    rows: list[Interaction], catalogue: Catalogue, n: int, seed: int
) -> tuple[list[Interaction], int]:
    """Samples negatives for one user's rows.

    Args:
      rows: All rows of one user.
      catalogue: The items to draw from.
      n: Negatives per positive row.
      seed: The sampling seed.

    Returns:
      The new negative rows, and how many could not be drawn.
    """
    seen = {r.item_id for r in rows}
    used = set(seen)
    negatives, short = [], 0
    for row in sorted(rows, key=lambda r: (r.item_id, r.timestamp or 0, r.labels)):
        if not any(row.labels):
            continue
        zeros = (0,) * len(row.labels)
        for k in range(n):
            for attempt in range(_MAX_TRIES_PER_NEGATIVE):
                h = hash64(seed, "negative", row.user_id, row.item_id, str(k), str(attempt))
                candidate = catalogue.draw(h)
                if candidate not in used:
                    used.add(candidate)
                    negatives.append(Interaction(row.user_id, candidate, row.timestamp, zeros))
                    break
            else:
                short += 1
    return negatives, short


class AddSampledNegatives(beam.PTransform):
    """Adds `n` sampled negatives per positive row.

    Input: Interactions. Output: a tuple (all rows including the negatives,
    one-element PCollection with the count of negatives that could not be drawn).

    Args:
      n: Negatives per positive (>= 1).
      seed: The sampling seed.
      distribution: "uniform" or "popularity".
      alpha: The popularity exponent (> 0).

    Raises:
      ValueError: For n < 1, an unknown distribution or alpha <= 0.
    """

    def __init__(self, n: int, seed: int, distribution: str = UNIFORM, alpha: float = 0.75):
        super().__init__()
        if n < 1:
            raise ValueError(f"negatives per positive must be >= 1, got {n}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"unknown negative sampling {distribution!r}; choose one of {DISTRIBUTIONS}"
            )
        if not alpha > 0:
            raise ValueError(f"the popularity exponent must be > 0, got {alpha}")
        self.n = n
        self.seed = seed
        self.alpha = alpha if distribution == POPULARITY else None

    def expand(self, records):
        n, seed, alpha = self.n, self.seed, self.alpha
        catalogue = (
            records
            | "Items" >> beam.Map(lambda r: r.item_id)
            | "RowsPerItem" >> beam.combiners.Count.PerElement()
            | "ToList" >> beam.combiners.ToList()
            | "Catalogue" >> beam.Map(Catalogue.build, alpha)
        )

        def per_user(kv, catalogue):
            negatives, short = sample_negatives(list(kv[1]), catalogue, n, seed)
            yield from negatives
            if short:
                yield beam.pvalue.TaggedOutput("short", short)

        result = (
            records
            | "ByUser" >> beam.Map(lambda r: (r.user_id, r))
            | "GroupByUser" >> beam.GroupByKey()
            | "Sample"
            >> beam.FlatMap(per_user, beam.pvalue.AsSingleton(catalogue)).with_outputs(
                "short", main="negatives"
            )
        )
        rows = (records, result.negatives) | "WithNegatives" >> beam.Flatten()
        short = result.short | "Short" >> beam.CombineGlobally(sum)
        return rows, short
