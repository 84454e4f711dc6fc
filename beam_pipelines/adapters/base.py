"""What every input adapter shares: its result, errors and file helpers.

An adapter is a PTransform applied to the pipeline that reads one raw format
and returns an :class:`AdapterResult`: canonical Interactions, Rejected rows,
side-feature tables, and per-table counts of the rows read and kept (so that
`rows read = rows kept + rows rejected` can be checked in `stats.json`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Sequence
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_pipelines import records
from beam_pipelines.validation import REJECTED, reject


class InputError(ValueError):
    """The input cannot be read as asked: a one-line message for the user."""


class AdapterResult(NamedTuple):
    """What an adapter produces.

    Attributes:
      interactions: Canonical Interactions.
      rejected: Rejected rows, with reasons.
      user_features: (user id, {feature: value}) per user.
      item_features: (item id, {feature: value}) per item.
      rows_read: (table, rows) counts of raw rows read.
      rows_kept: (table, rows) counts of raw rows kept.
      tasks: The task names, in label order.
      has_time: Whether the Interactions carry timestamps.
    """

    interactions: beam.PCollection
    rejected: beam.PCollection
    user_features: beam.PCollection
    item_features: beam.PCollection
    rows_read: beam.PCollection
    rows_kept: beam.PCollection
    tasks: tuple[str, ...]
    has_time: bool


def adapter_result(
    interactions,
    rejected: list,
    user_features,
    item_features,
    rows_read: list,
    rows_kept: list,
    tasks: tuple[str, ...],
    has_time: bool,
) -> AdapterResult:
    """Returns an AdapterResult, flattening the lists of PCollections it is given."""
    return AdapterResult(
        interactions=interactions,
        rejected=rejected | "AllRejected" >> beam.Flatten(),
        user_features=user_features,
        item_features=item_features,
        rows_read=rows_read | "AllRead" >> beam.Flatten(),
        rows_kept=rows_kept | "AllKept" >> beam.Flatten(),
        tasks=tasks,
        has_time=has_time,
    )


def list_files(path: str) -> list[str]:
    """Returns the files a path names: itself, a glob's matches, or a directory's files.

    Works for local paths and object stores (gs://...), where a "directory" is
    a prefix: a path that names no file is read as the directory of that name.

    Raises:
      InputError: If nothing matches.
    """
    if any(ch in path for ch in "*?["):
        files = files_matching(path)
    elif _is_dir(path):
        files = files_matching(FileSystems.join(path, "*"))
    else:
        files = files_matching(path) or files_matching(path.rstrip("/") + "/*")
    if not files:
        raise InputError(f"no input files at {path!r}")
    return files


def files_matching(pattern: str) -> list[str]:
    """Returns the files (not directories) matching a pattern, sorted; [] if none."""
    try:
        results = FileSystems.match([pattern])
    except Exception:  # BeamIOError when nothing matches on some file systems
        return []
    return sorted(m.path for r in results for m in r.metadata_list if not _is_dir(m.path))


def _is_dir(path: str) -> bool:
    import os

    return "://" not in path and os.path.isdir(path)


def basename(path: str) -> str:
    """Returns the file name of a local or remote path."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def open_text(path: str) -> io.TextIOBase:
    """Opens a local or remote file as text, gunzipping `.gz` files."""
    raw = FileSystems.open(path, compression_type="uncompressed")
    if path.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw)
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def first_line(path: str) -> str | None:
    """Returns a text file's first line without its newline, or None if empty."""
    with open_text(path) as f:
        line = f.readline()
    return line.rstrip("\r\n") if line else None


def split_csv(line: str, delimiter: str = ",") -> list[str]:
    """Splits one CSV line, honouring quotes (the csv module only where there are quotes)."""
    if '"' not in line:
        return line.split(delimiter) if line else []
    return next(csv.reader([line], delimiter=delimiter), [])


def count_per_table(pcoll, table: str, label: str):
    """Returns the one-element PCollection (table, number of elements)."""
    return (
        pcoll
        | f"Count{label}" >> beam.combiners.Count.Globally()
        | f"Table{label}" >> beam.Map(lambda n: (table, n))
    )


class MostFrequentFeatures(beam.CombineFn):
    """Combines {feature: value} dicts into one, deterministically.

    For each feature the output keeps the value seen most often, ties going to
    the smallest value as a string, so the result does not depend on the order
    in which the rows arrive. The accumulator holds one count per distinct
    (feature, value), so hot keys are combined before the shuffle.
    """

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, accumulator: dict, features: dict) -> dict:
        for name, value in features.items():
            counts = accumulator.setdefault(name, {})
            counts[value] = counts.get(value, 0) + 1
        return accumulator

    def merge_accumulators(self, accumulators) -> dict:
        accumulators = iter(accumulators)
        merged = next(accumulators, {})
        for accumulator in accumulators:
            for name, counts in accumulator.items():
                into = merged.setdefault(name, {})
                for value, n in counts.items():
                    into[value] = into.get(value, 0) + n
        return merged

    def extract_output(self, accumulator: dict) -> dict:
        return {
            name: min(counts.items(), key=lambda vn: (-vn[1], str(vn[0])))[0]
            for name, counts in sorted(accumulator.items())
        }


def columns_of(path: str) -> list[str]:
    """Returns the column names of a canonical CSV, JSONL or Parquet file.

    Raises:
      InputError: If the file has no header or no record to read them from.
    """
    kind = file_kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        with FileSystems.open(path) as f:
            return list(pq.read_schema(f).names)
    line = first_line(path)
    if not line:
        raise InputError(f"{basename(path)} is empty")
    if kind == "csv":
        return split_csv(line)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{basename(path)}: first line is not JSON ({e})") from e
    if not isinstance(record, dict):
        raise InputError(f"{basename(path)}: first line is not a JSON object")
    return list(record)


_KINDS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".json": "jsonl",
    ".json.gz": "jsonl",
    ".parquet": "parquet",
}


def file_kind(path: str) -> str | None:
    """Returns "csv", "jsonl" or "parquet" from a file's extension, or None."""
    name = basename(path).lower()
    for ext in sorted(_KINDS, key=len, reverse=True):
        if name.endswith(ext):
            return _KINDS[ext]
    return None


def require_columns(columns: Sequence[str], wanted: Sequence[str], where: str) -> None:
    """Raises InputError naming the first wanted column that is missing."""
    for name in wanted:
        if name not in columns:
            raise InputError(f"column {name!r} is not in {where} (columns: {', '.join(columns)})")


class ReadRows(beam.PTransform):
    """Reads files of one kind; returns ((source, row dict), Rejected) PCollections.

    CSV lines are split with their file's header; JSONL lines are parsed as
    JSON objects; Parquet rows are dicts already.
    """

    def __init__(self, files: list[str], kind: str, table: str, headers: dict[str, list[str]]):
        super().__init__()
        self.files = files
        self.kind = kind
        self.table = table
        self.headers = headers

    def expand(self, pbegin):
        files = pbegin | "Files" >> beam.Create(self.files)
        if self.kind == "parquet":
            rows = (
                files
                | "ReadParquet" >> beam.io.ReadAllFromParquet(with_filename=True)
                | "Source" >> beam.Map(lambda kv: (basename(kv[0]), kv[1]))
            )
            return rows, pbegin | "NoneRejected" >> beam.Create([])
        lines = files | "ReadText" >> beam.io.ReadAllFromText(
            skip_header_lines=1 if self.kind == "csv" else 0, with_filename=True
        )
        parsed = lines | "Parse" >> beam.ParDo(
            ParseLine(self.kind, self.table, self.headers)
        ).with_outputs(REJECTED, main="rows")
        return parsed.rows, parsed[REJECTED]


class ParseLine(beam.DoFn):
    """Parses (path, line) of CSV or JSONL into (source, row dict), or rejects it."""

    def __init__(self, kind: str, table: str, headers: dict[str, list[str]]):
        self.kind = kind
        self.table = table
        self.headers = {basename(k): v for k, v in headers.items()}

    def process(self, element):
        path, line = element
        source = basename(path)
        if self.kind == "csv":
            header = self.headers[source]
            try:
                values = split_csv(line)
            except Exception as e:  # csv.Error on malformed quoting
                yield reject(records.UNPARSABLE_ROW, self.table, source, line, str(e))
                return
            if len(values) != len(header):
                yield reject(
                    records.WRONG_COLUMN_COUNT,
                    self.table,
                    source,
                    line,
                    f"{len(values)} columns, the header has {len(header)}",
                )
                return
            yield source, dict(zip(header, values, strict=True))
            return
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield reject(records.UNPARSABLE_ROW, self.table, source, line, f"not JSON: {e}")
            return
        if not isinstance(row, dict):
            yield reject(records.UNPARSABLE_ROW, self.table, source, line, "not a JSON object")
            return
        yield source, row


def row_text(row) -> str:
    """Returns a parsed row as JSON text for a Rejected record."""
    return json.dumps(row, ensure_ascii=False, sort_keys=True, default=str)
