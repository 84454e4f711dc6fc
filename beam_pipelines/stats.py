"""Job statistics: collected as PCollections, merged into `OUT/stats.json`.

Statistics are computed from the data itself (not only from Beam counters, whose
committed values not every runner reports), written by the pipeline as JSON
lines under `OUT/_stats/`, and merged by the driver once the job has finished.
"""

from __future__ import annotations

import json
import math

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems


def named_value(pcoll, name: str):
    """Returns pcoll (one JSON-serializable value) as (name, value)."""
    return pcoll | f"Name_{name}" >> beam.Map(lambda v: (name, v))


def sum_columns(rows) -> list:
    """Column sums of equal-length rows (a combiner: it is also fed its own sums)."""
    return [sum(column) for column in zip(*list(rows), strict=True)]


class DegreeStatsFn(beam.CombineFn):
    """Degree distribution summary: count, min, max, mean and percentiles.

    The accumulator is a histogram {degree: nodes}, small for real graphs since
    distinct degrees are few, and exact.
    """

    def create_accumulator(self):
        return {}

    def add_input(self, acc, degree):
        acc[degree] = acc.get(degree, 0) + 1
        return acc

    def merge_accumulators(self, accs):
        out = {}
        for acc in accs:
            for k, v in acc.items():
                out[k] = out.get(k, 0) + v
        return out

    def extract_output(self, acc):
        return degree_summary(acc)


def degree_summary(histogram: dict[int, int]) -> dict:
    """Summarizes a {degree: count} histogram."""
    nodes = sum(histogram.values())
    if not nodes:
        return {"nodes": 0}
    degrees = sorted(histogram)
    total = sum(d * c for d, c in histogram.items())
    out = {"nodes": nodes, "edges": total, "min": degrees[0], "max": degrees[-1]}
    out["mean"] = round(total / nodes, 3)
    for q in (50, 90, 99):
        rank = max(1, math.ceil(q / 100 * nodes))
        seen = 0
        for d in degrees:
            seen += histogram[d]
            if seen >= rank:
                out[f"p{q}"] = d
                break
    return out


class WriteStats(beam.PTransform):
    """Writes (name, value) pairs as JSON lines under `directory`."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory

    def expand(self, stats):
        return (
            stats
            | "ToJson" >> beam.Map(lambda kv: json.dumps({kv[0]: kv[1]}, sort_keys=True))
            | "Write" >> beam.io.WriteToText(FileSystems.join(self.directory, "part"), ".jsonl")
        )


def read_stats(directory: str) -> dict:
    """Reads and merges what WriteStats wrote; nested dicts merge key by key."""
    merged: dict = {}
    pattern = FileSystems.join(directory, "part*")
    for match in FileSystems.match([pattern])[0].metadata_list:
        with FileSystems.open(match.path) as f:
            for line in f.read().decode("utf-8").splitlines():
                if line.strip():
                    _merge(merged, json.loads(line))
    return merged


def _merge(into: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v
