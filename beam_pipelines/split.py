"""Train / validation / test split (paper §3).

  * By time, where the records have timestamps: the newest `test_fraction` of
    the rows is the test split. The cut-off is the exact quantile of the
    timestamps (a histogram of distinct timestamps, bounded by the log's time
    range, not its size); rows at the cut-off timestamp go to test.
  * Otherwise at random: a seeded hash of the (user, item) pair decides, so
    every exposure of one pair lands in the same split.

Either way, `valid_fraction` of the remaining rows (by a seeded hash of the
pair) is held out as the validation split, 10% by default as in the paper.

The training split is then divided by :class:`SplitGraphRows` into the rows
that build the graphs and the rows that supervise (the training samples), so
that no training sample sees a graph computed from its own row, exactly as a
validation or test sample and a serving request do not:

  * ``random`` (the default): a seeded hash of the pair decides, so every
    exposure of one pair lands on the same side;
  * ``time``: the oldest `graph_fraction` of the training rows build the
    graphs, the newer rows supervise (graphs from history, labels from what
    came after; the cut-off is a timestamp quantile, as for the test split).
    Measured on synthetic data, its item-degree statistic drifted between
    train and test more than random's (0.020 against 0.016; README);
  * ``shared``: every training row both builds the graphs and supervises, as
    in the paper. This leaks: a training positive's own edge shapes its
    user's and item's similarity neighbours, and (skipped from G) leaves it
    one G neighbour fewer than its user's negatives; held-out pairs have no
    such tells. Kept for the paper-faithful comparison only.
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from beam_pipelines.config import AUTO, RANDOM, SHARED, TIME, PreprocessConfig
from beam_pipelines.hashing import uniform
from beam_pipelines.records import Interaction, pair_key


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
      config: The job's settings: `split` ("time", "random", or "auto": time
        iff `has_time`), `test_fraction`, `valid_fraction` (of the non-test
        rows) and `seed`.
      has_time: Whether the records carry timestamps.

    Raises:
      ValueError: For time mode without timestamps.
    """

    def __init__(self, config: PreprocessConfig, has_time: bool):
        super().__init__()
        mode = config.split
        if mode == TIME and not has_time:
            raise ValueError("--split=time needs timestamps, but the input has no time column")
        self.mode = TIME if mode == TIME or (mode == AUTO and has_time) else RANDOM
        self.test_fraction = config.test_fraction
        self.valid_fraction = config.valid_fraction
        self.seed = config.seed

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

        cutoff = records | "Cutoff" >> _TimeCutoff(test_fraction)

        def assign_by_time(record, cutoff):
            if cutoff is not None and record.timestamp >= cutoff:
                return "test", record
            return rest(record)

        return records | "TimeSplit" >> beam.Map(assign_by_time, beam.pvalue.AsSingleton(cutoff))


class _TimeCutoff(beam.PTransform):
    """One element: the smallest timestamp of the newest `fraction` of the rows."""

    def __init__(self, fraction: float):
        super().__init__()
        self.fraction = fraction

    def expand(self, records):
        return (
            records
            | "Timestamps" >> beam.Map(lambda r: r.timestamp)
            | "Histogram" >> beam.combiners.Count.PerElement()
            | "AllCounts" >> beam.combiners.ToList()
            | "Cutoff" >> beam.Map(time_cutoff, self.fraction)
        )


class GraphRows(NamedTuple):
    """The training split, divided.

    Attributes:
      graph: Interactions that build the graphs.
      supervise: Interactions that become training samples.
      disjoint: Whether the two are disjoint (False only in ``shared`` mode,
        where both are the whole training split).
    """

    graph: beam.PCollection
    supervise: beam.PCollection
    disjoint: bool


class SplitGraphRows(beam.PTransform):
    """Divides the training rows into graph rows and supervising rows.

    Input: Interactions of the training split. Output: :class:`GraphRows`.

    Args:
      config: The job's settings: `graph_split` ("random", "time" or
        "shared", see the module docstring), `graph_fraction` (the share of
        the training rows that build the graphs; unused in ``shared`` mode)
        and `seed` (of the ``random`` mode).
      has_time: Whether the records carry timestamps.

    Raises:
      ValueError: For ``time`` without timestamps.
    """

    def __init__(self, config: PreprocessConfig, has_time: bool):
        super().__init__()
        if config.graph_split == TIME and not has_time:
            raise ValueError(
                "--graph_split=time needs timestamps, but the input has no time column"
            )
        self.mode = config.graph_split
        self.graph_fraction = config.graph_fraction
        self.seed = config.seed

    def expand(self, train) -> GraphRows:
        if self.mode == SHARED:
            return GraphRows(train, train, disjoint=False)
        seed, fraction = self.seed, self.graph_fraction
        if self.mode == RANDOM:

            def side(record):
                key = pair_key(record.user_id, record.item_id)
                return 0 if uniform(seed, "graph", key) < fraction else 1

            parts = train | "ByHash" >> beam.Partition(lambda r, n: side(r), 2)
        else:
            cutoff = train | "GraphCutoff" >> _TimeCutoff(1.0 - fraction)

            def side_by_time(record, n, cutoff):
                return 1 if cutoff is not None and record.timestamp >= cutoff else 0

            parts = train | "ByTime" >> beam.Partition(
                side_by_time, 2, beam.pvalue.AsSingleton(cutoff)
            )
        return GraphRows(parts[0], parts[1], disjoint=True)
