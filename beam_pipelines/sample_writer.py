"""Writes batches of serialized samples as TFRecord shards, one split per directory.

The samplers emit (split, [records]) batches rather than one element per
record: on the local runners Beam's per-element cost (partitioning, the sink's
write call, counting) was a large share of the sampling stage, and a batch pays
it once. The files are ordinary TFRecord files, as `beam.io.WriteToTFRecord`
writes them (Beam's own record framing is used). Records are written in the
order the samplers emit them, which the pipeline asks to be a seeded random
order (`SamplePairs(mix_seed=...)`, `beam_pipelines.mixing`).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import filebasedsink, tfrecordio
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.records import SPLITS


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
    """

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, batches):
        by_split = batches | "BySplit" >> beam.Partition(
            lambda kv, n: SPLITS.index(kv[0]), len(SPLITS)
        )
        for k, split in enumerate(SPLITS):
            sink = _TFRecordBatchSink(FileSystems.join(self.output, split, "samples"))
            _ = (
                by_split[k]
                | f"Batches_{split}" >> beam.Values()
                | f"Write_{split}" >> beam.io.Write(sink)
            )
        counts = (
            batches
            | "BatchSizes" >> beam.MapTuple(lambda split, records: (split, len(records)))
            | "PerSplit" >> beam.CombinePerKey(sum)
        )
        return counts
