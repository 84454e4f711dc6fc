"""Puts the labelled pairs, or their samples, in a seeded random order.

The samplers emit samples in the order their pairs arrive, and the writer
keeps it. Inputs often come in label order: `--format behaviors` reads a
behaviour file at a time, and sampled negatives follow the positives. A
trainer reads a file through a shuffle buffer that holds only part of a split
(`model.input_pipeline`: 10,000 examples), so a label-ordered file gives
batches of one label. On Tmall (30% of the users) the first 30% of the
training file were purchases and the last 50% negatives, and every model
trained on it learned poorly, the graph models worst.

`MixOrder` cuts the pairs into buckets of about `pairs_per_bucket` by a seeded
hash of (split, user, item) and emits each bucket in hash order (the buckets
themselves come in whatever order the runner hands them on), so any stretch
of the pairs is a uniform sample of its split. `SamplePairs` applies it where
its strategy keeps the order (`beam_pipelines.pair_sampler`): the memory
sampler (the default) mixes the small (split, row) pairs before sampling, and
keeps their order; the join sampler regroups the pairs by user and then by
item in its joins, so it mixes the encoded samples after the last join, with
the same key. On the FnApiRunner a GroupByKey holds its input in memory, and
the samples are about 30 times larger than the pairs, so the join sampler's
mix costs memory there (docs/scaling.md); on Dataflow, Flink or Spark it is an
ordinary shuffle.
"""

from __future__ import annotations

import apache_beam as beam

from beam_pipelines.hashing import hash64

PAIRS_PER_BUCKET = 10_000


class MixOrder(beam.PTransform):
    """(split, Interaction, ...) tuples -> the same tuples, in a seeded random order.

    A tuple's bucket and rank are a hash of its (split, user, item), so a pair
    and its sample get the same place.

    Args:
      seed: The job's seed; each bucket's members and their order follow from
        it and the pairs.
      pairs_per_bucket: About how many tuples a bucket holds; one worker
        holds a bucket in memory at a time.

    Raises:
      ValueError: If pairs_per_bucket < 1.
    """

    def __init__(self, seed: int, pairs_per_bucket: int = PAIRS_PER_BUCKET):
        super().__init__()
        if pairs_per_bucket < 1:
            raise ValueError(f"pairs_per_bucket must be >= 1, got {pairs_per_bucket}")
        self.seed = seed
        self.pairs_per_bucket = pairs_per_bucket

    def expand(self, pairs):
        seed, per_bucket = self.seed, self.pairs_per_bucket
        count = pairs | "Count" >> beam.combiners.Count.Globally()

        def keyed(pair, n):
            split, row = pair[0], pair[1]
            key = hash64(seed, "order", split, row.user_id, row.item_id)
            return key % -(-n // per_bucket), (key, pair)

        def in_order(bucket):
            return [pair for _, pair in sorted(bucket[1], key=lambda kv: kv[0])]

        return (
            pairs
            | "Bucket" >> beam.Map(keyed, beam.pvalue.AsSingleton(count))
            | "Group" >> beam.GroupByKey()
            | "InOrder" >> beam.FlatMap(in_order)
        )
