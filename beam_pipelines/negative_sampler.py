"""Sampled negatives for logs that hold only positives.

For each positive row (any label 1) of a user, `n` items the user never
interacted with are drawn uniformly from the item catalogue (all items in the
log) with a seeded hash, and added as rows with every label 0 and the
positive's timestamp. A user who has seen (nearly) every item gets fewer; the
shortfall is counted in the `negatives_short` statistic.
"""

from __future__ import annotations

import apache_beam as beam

from beam_pipelines.hashing import hash64
from beam_pipelines.records import Interaction

_MAX_TRIES_PER_NEGATIVE = 20


def sample_negatives(
    rows: list[Interaction], catalogue: list[str], n: int, seed: int
) -> tuple[list[Interaction], int]:
    """Samples negatives for one user's rows.

    Args:
      rows: All rows of one user.
      catalogue: Every item id, sorted.
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
                candidate = catalogue[h % len(catalogue)]
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
    """

    def __init__(self, n: int, seed: int):
        super().__init__()
        if n < 1:
            raise ValueError(f"negatives per positive must be >= 1, got {n}")
        self.n = n
        self.seed = seed

    def expand(self, records):
        n, seed = self.n, self.seed
        catalogue = (
            records
            | "Items" >> beam.Map(lambda r: r.item_id)
            | "Distinct" >> beam.Distinct()
            | "ToList" >> beam.combiners.ToList()
            | "Sort" >> beam.Map(sorted)
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
