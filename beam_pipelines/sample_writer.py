"""Writes batches of serialized samples as TFRecord shards, one split per directory.

The samplers emit (split, [records]) batches rather than one element per
record: on the local runners Beam's per-element cost (partitioning, the sink's
write call, counting) was a large share of the sampling stage, and a batch pays
it once. The files are ordinary TFRecord files, as `beam.io.WriteToTFRecord`
writes them (Beam's own record framing is used).

The writer also mixes each split. The samplers emit records in the order the
input came in: with `--format behaviors` a behaviour file at a time, and
sampled negatives after the positives. Trainers read a file through a
shuffle buffer that holds only part of a split (`model.input_pipeline`: 10,000
examples), so a label-ordered file gives batches of one label: on Tmall, 30%
of the users, the first 30% of the training file were purchases, the last 50%
negatives, and every model trained on it learned poorly (the graph models
worst). So each split is cut into buckets of about `records_per_bucket`
records by a seeded hash of each record's bytes, and each bucket is written in
hash order: any stretch of a file is then a uniform sample of its split, on any
runner and in whatever order the runner hands the buckets on.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import filebasedsink, tfrecordio
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.hashing import hash_bytes64
from beam_pipelines.records import SPLITS

RECORDS_PER_BUCKET = 10_000


class _TFRecordBatchSink(filebasedsink.FileBasedSink):
    """A TFRecord sink whose elements are lists of serialized records."""

    def __init__(self, file_path_prefix: str):
        super().__init__(
            file_path_prefix,
            coder=None,
            file_name_suffix=".tfrecord",
            mime_type="application/octet-stream",
        )

    def write_record(self, file_handle, value):
        for record in value:
            tfrecordio._TFRecordUtil.write_record(file_handle, record)


class WriteSamples(beam.PTransform):
    """Writes (split, [serialized samples]) to OUT/<split>/samples-*.tfrecord.

    Returns:
      (split, number of samples) per split, for the statistics.

    Args:
      output: The output directory OUT.
      seed: Seed of the order the records are written in.
      records_per_bucket: About how many records a bucket of the mix holds
        (see the module doc); one worker holds a bucket in memory at a time.
    """

    def __init__(self, output: str, seed: int = 0, records_per_bucket: int = RECORDS_PER_BUCKET):
        super().__init__()
        if records_per_bucket < 1:
            raise ValueError(f"records_per_bucket must be >= 1, got {records_per_bucket}")
        self.output = output
        self.seed = seed
        self.records_per_bucket = records_per_bucket

    def expand(self, batches):
        by_split = batches | "BySplit" >> beam.Partition(
            lambda kv, n: SPLITS.index(kv[0]), len(SPLITS)
        )
        for k, split in enumerate(SPLITS):
            sink = _TFRecordBatchSink(FileSystems.join(self.output, split, "samples"))
            _ = (
                by_split[k]
                | f"Records_{split}" >> beam.FlatMap(lambda kv: kv[1])
                | f"Mix_{split}" >> _Mix(self.seed, self.records_per_bucket)
                | f"Write_{split}" >> beam.io.Write(sink)
            )
        counts = (
            batches
            | "BatchSizes" >> beam.MapTuple(lambda split, records: (split, len(records)))
            | "PerSplit" >> beam.CombinePerKey(sum)
        )
        return counts


class _Mix(beam.PTransform):
    """Records -> batches: buckets of the records, each in seeded hash order."""

    def __init__(self, seed: int, records_per_bucket: int):
        super().__init__()
        self.seed = seed
        self.records_per_bucket = records_per_bucket

    def expand(self, records):
        seed, per_bucket = self.seed, self.records_per_bucket
        count = records | "Count" >> beam.combiners.Count.Globally()

        def keyed(record, n):
            key = hash_bytes64(seed, record)
            return key % -(-n // per_bucket), (key, record)

        def in_order(bucket):
            return [record for _, record in sorted(bucket[1])]

        return (
            records
            | "Bucket" >> beam.Map(keyed, beam.pvalue.AsSingleton(count))
            | "Group" >> beam.GroupByKey()
            | "InOrder" >> beam.Map(in_order)
        )
