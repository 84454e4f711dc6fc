"""Multi-behaviour pair files -> one Interaction per (user, item) pair.

The input is a directory holding one or more files per behaviour, each with
one `user item` pair per line: the two ids separated by whitespace (spaces or
tabs), no header, no timestamp. This is how several public multi-behaviour
sets are published, e.g. the Tmall set of MBGCN (`buy.txt`, `collect.txt`,
`cart.txt`, ...). `.gz` files are read gunzipped.

`config.behavior_files` maps tasks to files, e.g.
`favorite=collect.txt,purchase=buy.txt+validation.txt+test.txt`: comma-separated
`task=file[+file...]` entries, the files named relative to the input directory.
The tasks are the mapping's names in the mapping's order (that is the label
order); `config.tasks`, if given, must list the same names in the same order.
A file may serve more than one task (it is then read once); behaviours that
the mapping does not name (e.g. `cart.txt` above) are not read.

Mapping:

* Interactions: the lines of all the files are aggregated per (user, item)
  pair, with a CombinePerKey, into one Interaction per pair that occurs in any
  of the files. Its label k is 1 iff the pair occurs in a file of task k (a
  pair in two files of one task, or twice in a file, counts once). There is no
  timestamp, so the split is random. The files hold no non-interactions: use
  sampled negatives (`--negatives_per_positive`). The tasks are not nested
  (a purchase need not follow a favourite), so `config.nested_tasks` must be
  False.
* No side features: the user and item feature tables are empty.

Rows are counted under the "interactions" table: every line of every file read
(once per file, even if it serves several tasks), kept = the lines that entered
the aggregation, not the number of pairs. Since a line is split at runs of
whitespace, an id is never empty: a line that does not split into exactly two
ids (a blank line, a lone id, extra columns) is rejected as
`wrong_column_count`, with the file name as its source.
"""

from __future__ import annotations

import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_pipelines import records
from beam_pipelines.adapters.base import (
    InputError,
    adapter_result,
    count_per_table,
)
from beam_pipelines.config import InputConfig
from beam_pipelines.validation import REJECTED, reject

EXAMPLE = "favorite=collect.txt,purchase=buy.txt+validation.txt+test.txt"


def parse_behavior_files(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parses a task-to-files mapping such as `favorite=a.txt,purchase=b.txt+c.txt`.

    Args:
      text: Comma-separated `task=file[+file...]` entries.

    Returns:
      (task, files) per entry, in the order given.

    Raises:
      InputError: If the mapping is empty or malformed, a task is listed
        twice, a task lists a file twice, or it has fewer than 2 tasks.
    """
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        raise InputError(f"--format behaviors needs --behavior_files, e.g. {EXAMPLE}")
    mapping: list[tuple[str, tuple[str, ...]]] = []
    for entry in entries:
        task, sep, files_text = (part.strip() for part in entry.partition("="))
        if not sep:
            raise InputError(
                f"behavior files entry {entry!r} is not task=file[+file...] (e.g. {EXAMPLE})"
            )
        if not task:
            raise InputError(f"behavior files entry {entry!r} has no task name")
        files = tuple(f.strip() for f in files_text.split("+"))
        if not files_text or not all(files):
            raise InputError(f"behavior files entry {entry!r} has an empty file name")
        if task in (t for t, _ in mapping):
            raise InputError(f"task {task!r} is listed twice in the behavior files")
        for name in files:
            if files.count(name) > 1:
                raise InputError(f"task {task!r} lists {name} twice")
        mapping.append((task, files))
    if len(mapping) < 2:
        raise InputError(
            f"MoGENet needs at least 2 tasks, the behavior files map only {mapping[0][0]}"
        )
    return tuple(mapping)


class ReadBehaviors(beam.PTransform):
    """Reads per-behaviour `user item` pair files (see the module docstring).

    Args:
      config: The InputConfig; `config.input` is the directory and
        `config.behavior_files` the task-to-files mapping.

    Raises:
      InputError: If the mapping is missing or malformed, a file does not
        exist, `config.tasks` disagrees with the mapping, or nested tasks are
        asked for (checked before the job starts).
    """

    def __init__(self, config: InputConfig):
        super().__init__()
        self.config = config
        mapping = parse_behavior_files(config.behavior_files)
        self.tasks = tuple(task for task, _ in mapping)
        if config.tasks and tuple(config.tasks) != self.tasks:
            raise InputError(
                f"--tasks {','.join(config.tasks)} disagrees with the behavior files' "
                f"tasks {','.join(self.tasks)} (leave --tasks out or list the same names "
                "in the same order)"
            )
        if config.nested_tasks:
            raise InputError(f"behaviors tasks ({', '.join(self.tasks)}) are not nested")
        if "://" not in config.input and not os.path.isdir(config.input):
            raise InputError(f"--format behaviors reads a directory; {config.input!r} is not one")
        # name -> label bits: bit k is set iff the file is one of task k's.
        masks: dict[str, int] = {}
        for k, (_, files) in enumerate(mapping):
            for name in files:
                masks[name] = masks.get(name, 0) | (1 << k)
        self.files: list[tuple[str, str, int]] = []  # (name, path, mask), in mapping order
        for name, mask in masks.items():
            path = FileSystems.join(config.input, name)
            if not FileSystems.exists(path):
                raise InputError(f"behavior file {name} does not exist in {config.input!r}")
            self.files.append((name, path, mask))

    def expand(self, pbegin):
        lines, parsed = [], []
        for name, path, mask in self.files:
            raw = pbegin | f"Read[{name}]" >> beam.io.ReadFromText(path)
            lines.append(raw)
            parsed.append(
                raw
                | f"Parse[{name}]"
                >> beam.ParDo(_ParsePair(name, mask)).with_outputs(REJECTED, main="pairs")
            )
        read = [count_per_table(lines | "AllLines" >> beam.Flatten(), records.INTERACTIONS, "Read")]
        pairs = [p.pairs for p in parsed] | "AllPairs" >> beam.Flatten()
        rejected = [p[REJECTED] for p in parsed]
        kept = [count_per_table(pairs, records.INTERACTIONS, "Kept")]
        n_tasks = len(self.tasks)
        interactions = (
            pairs
            | "PerPair" >> beam.CombinePerKey(_AnyBits())
            | "ToInteraction"
            >> beam.MapTuple(
                lambda pair, mask: records.Interaction(
                    pair[0], pair[1], None, tuple((mask >> k) & 1 for k in range(n_tasks))
                )
            )
        )
        return adapter_result(
            interactions=interactions,
            rejected=rejected,
            user_features=pbegin | "NoUserFeatures" >> beam.Create([]),
            item_features=pbegin | "NoItemFeatures" >> beam.Create([]),
            rows_read=read,
            rows_kept=kept,
            tasks=self.tasks,
            has_time=False,
        )


@beam.typehints.with_output_types(tuple[tuple[str, str], int])
class _ParsePair(beam.DoFn):
    """A `user item` line of one file -> ((user, item), the file's label bits), or rejects it."""

    def __init__(self, source: str, mask: int):
        self.source = source
        self.mask = mask

    def process(self, line):
        fields = line.split()
        if len(fields) != 2:
            yield reject(
                records.WRONG_COLUMN_COUNT,
                records.INTERACTIONS,
                self.source,
                line,
                f"{len(fields)} fields, want 2 (user item)",
            )
            return
        yield (fields[0], fields[1]), self.mask


class _AnyBits(beam.CombineFn):
    """Combines a pair's label bits with OR: label k is 1 if any line sets bit k."""

    def create_accumulator(self) -> int:
        return 0

    def add_input(self, accumulator: int, mask: int) -> int:
        return accumulator | mask

    def merge_accumulators(self, accumulators) -> int:
        merged = 0
        for accumulator in accumulators:
            merged |= accumulator
        return merged

    def extract_output(self, accumulator: int) -> int:
        return accumulator
