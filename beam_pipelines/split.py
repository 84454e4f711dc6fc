"""Train / validation / test split (paper §3).

  * By time, where the records have timestamps: the newest `test_fraction` of
    the rows is the test split. The cut-off is the exact quantile of the
    timestamps (a histogram of distinct timestamps, bounded by the log's time
    range, not its size); rows at the cut-off timestamp go to test.
  * Otherwise at random: a seeded hash of the (user, item) pair decides, so
    every exposure of one pair lands in the same split.

Either way, `valid_fraction` of the remaining rows (by a seeded hash of the
pair) is held out as the validation split, 10% by default as in the paper.
"""

from __future__ import annotations

import apache_beam as beam

from beam_pipelines.hashing import uniform
from beam_pipelines.records import Interaction, pair_key

TIME = "time"
RANDOM = "random"
AUTO = "auto"
MODES = (AUTO, TIME, RANDOM)


def time_cutoff(histogram: list[tuple[int, int]], test_fraction: float) -> int | None:
    """Returns the smallest timestamp of the test split.

    Args:
      histogram: (timestamp, rows) pairs, in any order.
      test_fraction: Share of the rows, the newest, that form the test split.

    Returns:
      The cut-off timestamp: rows at or after it are test rows. None when there
      are no rows or the test split is empty.
    """
    total = sum(n for _, n in histogram)
    wanted = test_fraction * total
    if total == 0 or wanted <= 0:
        return None
    taken = 0
    newest_first = sorted(histogram, reverse=True)
    for timestamp, n in newest_first:
        taken += n
        if taken >= wanted:
            return timestamp
    return newest_first[-1][0]  # only reached through float rounding


def _held_out_for_validation(seed: int, record: Interaction, valid_fraction: float) -> bool:
    return uniform(seed, "valid", pair_key(record.user_id, record.item_id)) < valid_fraction


class AssignSplits(beam.PTransform):
    """Tags every Interaction with its split.

    Input: Interactions. Output: (split, Interaction), split in train/valid/test.

    Args:
      mode: "time", "random", or "auto" (time iff `has_time`).
      has_time: Whether the records carry timestamps.
      test_fraction: Share of rows in the test split.
      valid_fraction: Share of the non-test rows in the validation split.
      seed: The split's seed.

    Raises:
      ValueError: For an unknown mode, time mode without timestamps, or
        fractions outside [0, 1).
    """

    def __init__(
        self,
        mode: str,
        has_time: bool,
        test_fraction: float = 0.2,
        valid_fraction: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown split mode {mode!r}; choose one of {MODES}")
        if mode == TIME and not has_time:
            raise ValueError("--split=time needs timestamps, but the input has no time column")
        for name, value in (("test_fraction", test_fraction), ("valid_fraction", valid_fraction)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.mode = TIME if mode == TIME or (mode == AUTO and has_time) else RANDOM
        self.test_fraction = test_fraction
        self.valid_fraction = valid_fraction
        self.seed = seed

    def expand(self, records):
        seed, test_fraction, valid_fraction = self.seed, self.test_fraction, self.valid_fraction

        def rest(record):
            if _held_out_for_validation(seed, record, valid_fraction):
                return "valid", record
            return "train", record

        if self.mode == RANDOM:

            def assign(record):
                if uniform(seed, "test", pair_key(record.user_id, record.item_id)) < test_fraction:
                    return "test", record
                return rest(record)

            return records | "RandomSplit" >> beam.Map(assign)

        cutoff = (
            records
            | "Timestamps" >> beam.Map(lambda r: r.timestamp)
            | "Histogram" >> beam.combiners.Count.PerElement()
            | "AllCounts" >> beam.combiners.ToList()
            | "Cutoff" >> beam.Map(time_cutoff, test_fraction)
        )

        def assign_by_time(record, cutoff):
            if cutoff is not None and record.timestamp >= cutoff:
                return "test", record
            return rest(record)

        return records | "TimeSplit" >> beam.Map(assign_by_time, beam.pvalue.AsSingleton(cutoff))
