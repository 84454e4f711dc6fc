"""Canonical interaction files: CSV (with a header), JSONL or Parquet.

One row is one exposure with a user id, an item id, one 0/1 column per task
and optionally a timestamp; the columns are mapped with `--user_col`,
`--item_col`, `--label_cols` and `--time_col`. A directory input reads every
CSV/JSONL/Parquet file in it as interactions, except the side tables, which
are found by name: `user_features.*` and `item_features.*` (keyed by the user
and item id columns; every other column is a feature, categorical as a string
unless listed in `--numeric_features`, or stored as a float in JSONL/Parquet).
"""

from __future__ import annotations

import apache_beam as beam

from beam_pipelines import records
from beam_pipelines.adapters.base import (
    InputError,
    MostFrequentFeatures,
    ReadRows,
    adapter_result,
    basename,
    columns_of,
    count_per_table,
    file_kind,
    list_files,
    require_columns,
    row_text,
)
from beam_pipelines.config import InputConfig
from beam_pipelines.validation import REJECTED, parse_id, reject, to_interaction

DEFAULT_TASKS = ("click", "conversion")
_SIDE_TABLES = {"user_features": records.USER_FEATURES, "item_features": records.ITEM_FEATURES}


def _side_table_name(path: str) -> str | None:
    stem = basename(path).split(".", 1)[0]
    return _SIDE_TABLES.get(stem)


class ReadCanonical(beam.PTransform):
    """Reads canonical interactions and side tables.

    Args:
      config: The InputConfig.

    Raises:
      InputError: If the input has no interaction files, files of unknown
        kind, or lacks a mapped column (checked before the job starts).
    """

    def __init__(self, config: InputConfig):
        super().__init__()
        self.config = config
        self.tasks = tuple(config.tasks) or DEFAULT_TASKS
        self.label_cols = tuple(config.label_cols) or self.tasks
        if len(self.label_cols) != len(self.tasks):
            raise InputError(
                f"{len(self.label_cols)} label columns for {len(self.tasks)} tasks "
                f"({', '.join(self.tasks)})"
            )
        if len(self.tasks) < 2:
            raise InputError(f"MoGENet needs at least 2 tasks, got {', '.join(self.tasks)}")
        files = list_files(config.input)
        side = {
            records.USER_FEATURES: config.user_features,
            records.ITEM_FEATURES: config.item_features,
        }
        interaction_files = []
        for path in files:
            kind = file_kind(path)
            table = _side_table_name(path)
            if table is not None:  # a side table, by its name
                side[table] = side[table] or path
            elif kind is not None:
                interaction_files.append(path)
            else:
                raise InputError(
                    f"{basename(path)}: unknown file type (want .csv, .jsonl or .parquet)"
                )
        if not interaction_files:
            raise InputError(f"no interaction files at {config.input!r}")
        self.interaction_files = interaction_files
        self.side_files = {t: p for t, p in side.items() if p}
        self.headers: dict[str, list[str]] = {}
        columns = None
        for path in interaction_files:
            cols = columns_of(path)
            if file_kind(path) == "csv":
                self.headers[path] = cols
            columns = columns or cols
        wanted = [config.user_col, config.item_col, *self.label_cols]
        require_columns(columns, wanted, basename(interaction_files[0]))
        if config.time_col == "auto":
            self.time_col = "timestamp" if "timestamp" in columns else ""
        else:
            self.time_col = config.time_col
            if self.time_col:
                require_columns(columns, [self.time_col], basename(interaction_files[0]))
        for table, path in self.side_files.items():
            cols = columns_of(path)
            key = config.user_col if table == records.USER_FEATURES else config.item_col
            require_columns(cols, [key], basename(path))
            if file_kind(path) == "csv":
                self.headers[path] = cols

    def expand(self, pbegin):
        config = self.config
        by_kind: dict[str, list[str]] = {}
        for path in self.interaction_files:
            by_kind.setdefault(file_kind(path), []).append(path)
        rows, rejected, read_counts = [], [], []
        for kind, files in sorted(by_kind.items()):
            parsed, unparsable = pbegin | f"Read_{kind}" >> ReadRows(
                files, kind, records.INTERACTIONS, self.headers
            )
            rows.append(parsed)
            rejected.append(unparsable)
        raw = rows | "AllRows" >> beam.Flatten()
        read_counts.append(
            count_per_table(
                (raw, *rejected) | "AllReadInteractions" >> beam.Flatten(),
                records.INTERACTIONS,
                "ReadInteractions",
            )
        )
        validated = raw | "Validate" >> beam.ParDo(
            _ValidateInteraction(
                config.user_col,
                config.item_col,
                self.label_cols,
                self.time_col,
                self.tasks,
                config.nested_tasks,
            )
        ).with_outputs(REJECTED, main="interactions")
        rejected.append(validated[REJECTED])
        kept = [count_per_table(validated.interactions, records.INTERACTIONS, "KeptInteractions")]

        features = {}
        for table in (records.USER_FEATURES, records.ITEM_FEATURES):
            path = self.side_files.get(table)
            if path is None:
                features[table] = pbegin | f"No_{table}" >> beam.Create([])
                continue
            key = config.user_col if table == records.USER_FEATURES else config.item_col
            side_raw, unparsable = pbegin | f"Read_{table}" >> ReadRows(
                [path], file_kind(path), table, self.headers
            )
            rejected.append(unparsable)
            read_counts.append(
                count_per_table(
                    (side_raw, unparsable) | f"AllRead_{table}" >> beam.Flatten(),
                    table,
                    f"Read_{table}",
                )
            )
            parsed = side_raw | f"Parse_{table}" >> beam.ParDo(
                _ParseFeatureRow(table, key, config.numeric_features)
            ).with_outputs(REJECTED, main="features")
            rejected.append(parsed[REJECTED])
            kept.append(count_per_table(parsed.features, table, f"Kept_{table}"))
            # An id listed more than once gets, per feature, its most frequent value.
            features[table] = parsed.features | f"PerId_{table}" >> beam.CombinePerKey(
                MostFrequentFeatures()
            )
        return adapter_result(
            interactions=validated.interactions,
            rejected=rejected,
            user_features=features[records.USER_FEATURES],
            item_features=features[records.ITEM_FEATURES],
            rows_read=read_counts,
            rows_kept=kept,
            tasks=self.tasks,
            has_time=bool(self.time_col),
        )


class _ValidateInteraction(beam.DoFn):
    def __init__(self, user_col, item_col, label_cols, time_col, tasks, nested):
        self.user_col = user_col
        self.item_col = item_col
        self.label_cols = label_cols
        self.time_col = time_col
        self.tasks = tasks
        self.nested = nested

    def process(self, element):
        source, row = element
        for col in (self.user_col, self.item_col, *self.label_cols, self.time_col):
            if col and col not in row:
                yield reject(
                    records.MISSING_COLUMN,
                    records.INTERACTIONS,
                    source,
                    row_text(row),
                    f"no column {col!r}",
                )
                return
        result = to_interaction(
            row[self.user_col],
            row[self.item_col],
            [row[c] for c in self.label_cols],
            row[self.time_col] if self.time_col else None,
            tasks=self.tasks,
            nested=self.nested,
            has_time=bool(self.time_col),
        )
        if isinstance(result, records.Interaction):
            yield result
        else:
            yield reject(result[0], records.INTERACTIONS, source, row_text(row), result[1])


class _ParseFeatureRow(beam.DoFn):
    def __init__(self, table: str, key: str, numeric: tuple[str, ...]):
        self.table = table
        self.key = key
        self.numeric = set(numeric)

    def process(self, element):
        source, row = element
        node_id = parse_id(row.get(self.key))
        if node_id is None:
            detail = f"{self.key} is empty"
            yield reject(records.EMPTY_ID, self.table, source, row_text(row), detail)
            return
        features = {}
        for name, value in row.items():
            if name == self.key or value is None or value == "" or value != value:  # NaN
                continue
            if name in self.numeric or isinstance(value, float):
                try:
                    features[name] = float(value)
                except (TypeError, ValueError):
                    yield reject(
                        records.BAD_FEATURE_VALUE,
                        self.table,
                        source,
                        row_text(row),
                        f"numeric feature {name}={value!r} is not a number",
                    )
                    return
            else:
                features[name] = str(value)
        yield node_id, features
