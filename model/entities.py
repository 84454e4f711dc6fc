"""Users and items as the model indexes them: ids, side features, lookup.

The preprocessing job writes, beside the samples, every training id with its
row count (`vocab/{user,item}-*.tsv`) and every side-table row
(`features/{user,item}-*.jsonl`, `{"id": ..., "<feature>": value}`). An
`EntityTable` turns one node set's files into what the encoder reads:

  * index 0 stands for padding and unknown ids; known ids (the training
    vocabulary and the side table's ids) get 1.. in sorted order, so the same
    files always give the same indices;
  * each categorical feature becomes an int table [V] of value indices (0 =
    missing; values indexed 1.. in sorted order), each numeric feature a
    float table [V] standardised to zero mean and unit variance (missing = 0).

A JSON value that is a number makes a feature numeric, any string makes it
categorical (as in the job's `stats.json`). The string -> index lookup is a
`tf.lookup.StaticHashTable`, applied in the input pipeline (or the serving
signature) so that the numeric model can be compiled with XLA.

`EntityTable.save` writes the table to a model directory, so that a trained
model can be rebuilt, exported and served without the data directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from contracts.layout import NODE_SETS

PAD_INDEX = 0


class EntityError(ValueError):
    """An entity file cannot be used: a one-line message."""


@dataclass
class EntityTable:
    """One node set's ids and side-feature tables.

    Attributes:
      ids: Known ids; id `ids[k]` has index k + 1.
      categorical: {feature: (values, table)} — the feature's known values
        (value `values[k]` has index k + 1) and the [V] int32 value index of
        every entity (row 0 = padding, all 0).
      numeric: {feature: table} — the [V] float32 standardised values.
      raw_numeric: {feature: [V - 1] float64} — the values as read, NaN where
        missing (what `save` writes, so a save/load round trip is exact).
    """

    ids: list[str]
    categorical: dict[str, tuple[list[str], np.ndarray]]
    numeric: dict[str, np.ndarray]
    raw_numeric: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Rows of the tables: the known ids plus the padding/unknown row."""
        return len(self.ids) + 1

    @classmethod
    def from_rows(cls, vocab_ids, feature_rows) -> EntityTable:
        """Builds the table from ids and side-table rows.

        Args:
          vocab_ids: Iterable of ids (the training vocabulary).
          feature_rows: Iterable of dicts with "id" and feature values.

        Returns:
          The `EntityTable`.
        """
        rows = {}
        for row in feature_rows:
            row = dict(row)
            rows[str(row.pop("id"))] = row
        ids = sorted(set(map(str, vocab_ids)) | set(rows))
        names = sorted({name for row in rows.values() for name in row})
        categorical, numeric, raw_numeric = {}, {}, {}
        for name in names:
            values = [rows.get(i, {}).get(name) for i in ids]
            present = [v for v in values if v is not None]
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
                column = np.array([np.nan if v is None else v for v in values], np.float64)
                raw_numeric[name] = column
                mean = np.nanmean(column)
                std = np.nanstd(column) or 1.0
                table = np.nan_to_num((column - mean) / std, nan=0.0).astype(np.float32)
                numeric[name] = np.concatenate([[0.0], table]).astype(np.float32)
            else:
                vocabulary = sorted({str(v) for v in present})
                index = {v: k + 1 for k, v in enumerate(vocabulary)}
                table = [0] + [0 if v is None else index[str(v)] for v in values]
                categorical[name] = (vocabulary, np.array(table, np.int32))
        return cls(ids, categorical, numeric, raw_numeric)

    @classmethod
    def load(cls, directory: str, node_set: str) -> EntityTable:
        """Reads `<directory>/vocab/<node_set>-*.tsv` and `features/<node_set>-*.jsonl`.

        Raises:
          EntityError: If there is no vocabulary or a line cannot be read.
        """
        vocab_files = _glob(directory, "vocab", node_set, "tsv")
        if not vocab_files:
            raise EntityError(
                f"{directory} has no vocab/{node_set}-*.tsv: "
                "is it the --output of python -m beam_pipelines.run?"
            )
        ids = []
        for path in vocab_files:
            with tf.io.gfile.GFile(path) as f:
                ids.extend(line.split("\t", 1)[0] for line in f if line.strip())
        rows = []
        for path in _glob(directory, "features", node_set, "jsonl"):
            with tf.io.gfile.GFile(path) as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                        row["id"]
                    except (ValueError, KeyError, TypeError) as e:
                        raise EntityError(f"{path}:{number}: not a feature row ({e})") from None
                    rows.append(row)
        return cls.from_rows(ids, rows)

    def save(self, directory: str, node_set: str) -> None:
        """Writes the files `load` reads, under `directory`."""
        for sub in ("vocab", "features"):
            tf.io.gfile.makedirs(os.path.join(directory, sub))
        with tf.io.gfile.GFile(_shard(directory, "vocab", node_set, "tsv"), "w") as f:
            f.write("".join(f"{i}\t0\n" for i in self.ids))
        with tf.io.gfile.GFile(_shard(directory, "features", node_set, "jsonl"), "w") as f:
            for k, entity in enumerate(self.ids, 1):
                row = {"id": entity}
                for name, (values, table) in self.categorical.items():
                    if table[k]:
                        row[name] = values[table[k] - 1]
                for name, column in self.raw_numeric.items():
                    if not np.isnan(column[k - 1]):
                        row[name] = float(column[k - 1])
                f.write(json.dumps(row, sort_keys=True) + "\n")

    def lookup_table(self) -> tf.lookup.StaticHashTable:
        """Returns the string id -> int32 index table (unknown ids -> 0)."""
        keys = tf.constant(self.ids or [""], tf.string)
        values = tf.range(1, len(self.ids) + 1, dtype=tf.int32) if self.ids else [0]
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=PAD_INDEX
        )


def load_entities(directory: str) -> dict[str, EntityTable]:
    """Returns {node set: EntityTable} read from a data or model directory."""
    return {node_set: EntityTable.load(directory, node_set) for node_set in NODE_SETS}


def save_entities(entities: dict[str, EntityTable], directory: str) -> None:
    """Writes every node set's table under `directory` (see `EntityTable.save`)."""
    for node_set, table in entities.items():
        table.save(directory, node_set)


def _glob(directory, sub, node_set, ext):
    return sorted(tf.io.gfile.glob(os.path.join(directory, sub, f"{node_set}-*.{ext}")))


def _shard(directory, sub, node_set, ext):
    return os.path.join(directory, sub, f"{node_set}-00000-of-00001.{ext}")
