"""Puts the labelled pairs in a seeded random order before they are sampled.

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
of the pairs is a uniform sample of its split. The memory sampler (the
default) keeps that order, and so do the files; the join sampler regroups the
pairs by user and then by item, so its files come grouped by item and are
not mixed. It mixes the small (split, row) pairs, not the encoded samples:
on the FnApiRunner a GroupByKey holds its input in memory, and the samples
are about 30 times larger.
"""

from __future__ import annotations

import apache_beam as beam

from beam_pipelines.hashing import hash64

PAIRS_PER_BUCKET = 10_000


class MixOrder(beam.PTransform):
    """(split, Interaction) pairs -> the same pairs, in a seeded random order.

    Args:
      seed: The job's seed; each bucket's members and their order follow from
        it and the pairs.
      pairs_per_bucket: About how many pairs a bucket holds; one worker holds a
        bucket in memory at a time.

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
            split, row = pair
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
