"""Tests for the canonical CSV/JSONL/Parquet adapter: mapping, rejects, side tables."""

import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines import records
from beam_pipelines.adapters.base import InputError
from beam_pipelines.adapters.canonical import ReadCanonical
from beam_pipelines.config import InputConfig
from beam_pipelines.records import Interaction

CSV = """uid,iid,ts,clk,cvt
u1,i1,100,1,1
u1,i2,2026-01-01T00:00:00,1,0
u2,i1,300,0,0
u2,i3,400
,i1,500,1,0
u3,i1,600,2,0
u3,i2,yesterday,1,0
u3,i3,700,0,1
"""
CSV_EXPECTED = [
    Interaction("u1", "i1", 100, (1, 1)),
    Interaction("u1", "i2", 1767225600, (1, 0)),
    Interaction("u2", "i1", 300, (0, 0)),
]
CSV_REJECTED = [
    records.WRONG_COLUMN_COUNT,
    records.EMPTY_ID,
    records.BAD_LABEL,
    records.BAD_TIMESTAMP,
    records.NESTED_VIOLATION,
]


def _mapped(path, **kw):
    return InputConfig(
        input=str(path),
        user_col="uid",
        item_col="iid",
        label_cols=("clk", "cvt"),
        time_col="ts",
        nested_tasks=True,
        **kw,
    )


def _check(result, interactions, reasons, read, kept):
    assert_that(result.interactions, equal_to(interactions), label="Interactions")
    assert_that(
        result.rejected | beam.Map(lambda r: (r.table, r.reason)),
        equal_to(reasons),
        label="Reasons",
    )
    assert_that(result.rows_read, equal_to(read), label="Read")
    assert_that(result.rows_kept, equal_to(kept), label="Kept")


def test_csv_with_column_mapping_and_every_bad_row_kind(tmp_path):
    (tmp_path / "log.csv").write_text(CSV)
    adapter = ReadCanonical(_mapped(tmp_path / "log.csv"))
    assert adapter.tasks == ("click", "conversion") and adapter.time_col == "ts"
    with TestPipeline(runner="FnApiRunner") as p:
        result = p | adapter
        assert result.has_time
        _check(
            result,
            CSV_EXPECTED,
            [("interactions", r) for r in CSV_REJECTED],
            [("interactions", 8)],
            [("interactions", 3)],
        )
        sources = result.rejected | beam.Map(lambda r: r.source)
        assert_that(sources, equal_to(["log.csv"] * 5), label="Sources")


def test_jsonl_rejects_bad_json_and_missing_columns(tmp_path):
    lines = [
        {"user_id": "a", "item_id": "x", "click": 1, "conversion": 0},
        {"user_id": "b", "item_id": "x", "click": True, "conversion": False},
        {"user_id": "c", "item_id": 7, "click": "1", "conversion": "1"},
        {"user_id": "d", "click": 1, "conversion": 0},
    ]
    text = "\n".join(json.dumps(r) for r in lines) + "\n{not json\n[1, 2]\n"
    (tmp_path / "part-0.jsonl").write_text(text)
    adapter = ReadCanonical(InputConfig(input=str(tmp_path)))
    assert adapter.time_col == ""
    with TestPipeline(runner="FnApiRunner") as p:
        result = p | adapter
        assert not result.has_time
        _check(
            result,
            [
                Interaction("a", "x", None, (1, 0)),
                Interaction("b", "x", None, (1, 0)),
                Interaction("c", "7", None, (1, 1)),
            ],
            [
                ("interactions", records.MISSING_COLUMN),
                ("interactions", records.UNPARSABLE_ROW),
                ("interactions", records.UNPARSABLE_ROW),
            ],
            [("interactions", 6)],
            [("interactions", 3)],
        )


def test_parquet_and_side_tables_in_a_directory(tmp_path):
    table = pa.table(
        {
            "user_id": ["u1", "u2", None, "u4"],
            "item_id": ["i1", "i1", "i2", "i2"],
            "timestamp": [10, 20, 30, 40],
            "click": [1, 0, 1, 1],
            "conversion": [0, 0, 0, 5],
        }
    )
    pq.write_table(table, tmp_path / "interactions.parquet")
    (tmp_path / "user_features.csv").write_text(
        "user_id,age,score\nu1,a3,0.5\nu2,,1\n,a1,2\nu4,a2,high\n"
    )
    (tmp_path / "item_features.jsonl").write_text(
        '{"item_id": "i1", "cat": "c1", "price": 9.5}\n{"item_id": "i2", "cat": 3}\n'
    )
    adapter = ReadCanonical(InputConfig(input=str(tmp_path), numeric_features=("score",)))
    assert adapter.time_col == "timestamp"
    with TestPipeline(runner="FnApiRunner") as p:
        result = p | adapter
        _check(
            result,
            [Interaction("u1", "i1", 10, (1, 0)), Interaction("u2", "i1", 20, (0, 0))],
            [
                ("interactions", records.EMPTY_ID),
                ("interactions", records.BAD_LABEL),
                ("user_features", records.EMPTY_ID),
                ("user_features", records.BAD_FEATURE_VALUE),
            ],
            [("interactions", 4), ("user_features", 4), ("item_features", 2)],
            [("interactions", 2), ("user_features", 2), ("item_features", 2)],
        )
        assert_that(
            result.user_features,
            equal_to([("u1", {"age": "a3", "score": 0.5}), ("u2", {"score": 1.0})]),
            label="Users",
        )
        assert_that(
            result.item_features,
            equal_to([("i1", {"cat": "c1", "price": 9.5}), ("i2", {"cat": "3"})]),
            label="Items",
        )


@pytest.mark.parametrize(
    "files, kw, message",
    [
        ({}, {}, "no input files"),
        ({"notes.txt": "x"}, {}, "unknown file type"),
        ({"log.csv": ""}, {}, "is empty"),
        ({"log.csv": "user_id,item_id,click\n"}, {}, "'conversion' is not in log.csv"),
        ({"user_features.csv": "user_id,a\n"}, {}, "no interaction files"),
        ({"log.csv": "user_id,item_id,click,conversion\n"}, {"time_col": "t"}, "'t' is not"),
        ({"log.csv": "user_id,item_id,a\n"}, {"tasks": ("a",)}, "at least 2 tasks"),
        ({"log.csv": "user_id,item_id,a,b\n"}, {"label_cols": ("a",)}, "1 label columns"),
    ],
)
def test_input_errors_before_the_job_starts(tmp_path, files, kw, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        ReadCanonical(InputConfig(input=str(tmp_path), **kw))


def test_side_tables_are_never_read_as_interactions(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,click,conversion\nu1,i1,1,0\n")
    (tmp_path / "user_features.csv").write_text("user_id,age\nu1,a3\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "items.csv").write_text("item_id,cat\ni1,c\n")
    config = InputConfig(
        input=str(tmp_path),
        user_features=str(tmp_path / "user_features.csv"),
        item_features=str(other / "items.csv"),
    )
    adapter = ReadCanonical(config)
    assert [p.rsplit("/", 1)[-1] for p in adapter.interaction_files] == ["log.csv"]
    assert adapter.side_files == {
        "user_features": str(tmp_path / "user_features.csv"),
        "item_features": str(other / "items.csv"),
    }
