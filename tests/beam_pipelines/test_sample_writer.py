"""WriteSamples: every record of every batch written once, in its split's files."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.sample_writer import WriteSamples
from tests.beam_pipelines.sample_reader import read_split_records

BATCHES = [
    ("train", [b"t0", b"t1", b"t2"]),
    ("valid", [b"v0"]),
    ("train", [b"t3"]),
    ("test", [b"x0", b"x1"]),
]


def test_each_record_is_written_once_in_its_split(tmp_path):
    with TestPipeline(runner="FnApiRunner") as p:
        counts = p | beam.Create(BATCHES) | WriteSamples(str(tmp_path))
        assert_that(counts, equal_to([("train", 4), ("valid", 1), ("test", 2)]))
    written = read_split_records(str(tmp_path))
    assert sorted(written["train"]) == [b"t0", b"t1", b"t2", b"t3"]
    assert written["valid"] == [b"v0"]
    assert sorted(written["test"]) == [b"x0", b"x1"]
