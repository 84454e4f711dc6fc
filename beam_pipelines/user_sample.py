"""A seeded sample of the users, for experiments that must fit a time budget.

`--user_fraction F` keeps every row of a user iff a seeded hash of the user id
falls below F, so a kept user keeps their whole history and the sample is the
same on any runner. The rows of the other users are not dropped silently:
their number is `user_sample.rows_dropped` in `stats.json`.
"""

from __future__ import annotations

import apache_beam as beam

from beam_pipelines.hashing import uniform


def keeps_user(seed: int, user_id: str, fraction: float) -> bool:
    """Whether the user is in the sample."""
    return uniform(seed, "user_sample", user_id) < fraction


class SampleUsers(beam.PTransform):
    """Keeps a seeded share of the users with all their rows.

    Input: Interactions. Output: (the kept Interactions, a one-element
    PCollection with the number of rows left out).

    Args:
      fraction: Share of the users to keep, in (0, 1].
      seed: The sample's seed.

    Raises:
      ValueError: If the fraction is outside (0, 1].
    """

    def __init__(self, fraction: float, seed: int = 0):
        super().__init__()
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"user_fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction
        self.seed = seed

    def expand(self, records):
        seed, fraction = self.seed, self.fraction
        kept, left_out = records | "ByUser" >> beam.Partition(
            lambda r, n: 0 if keeps_user(seed, r.user_id, fraction) else 1, 2
        )
        dropped = left_out | "CountLeftOut" >> beam.combiners.Count.Globally()
        return kept, dropped
