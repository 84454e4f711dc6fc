"""Tests for beam_pipelines.adapters.behaviors: mapping, aggregation, rejects, row counts, CLI."""

import json
import os

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines import records, run
from beam_pipelines.adapters.base import InputError
from beam_pipelines.adapters.behaviors import ReadBehaviors, parse_behavior_files
from beam_pipelines.config import InputConfig
from beam_pipelines.records import Interaction
from tests.beam_pipelines.adapters.row_balance import balance, balanced
from tests.beam_pipelines.adapters.text_files import write_lines

MAPPING = "favorite=collect.txt,purchase=buy.txt+validation.txt+test.txt"
GOOD = {
    "collect.txt": ["1 10", "1 20", "2 10", "2 10"],  # a pair twice in one file
    "buy.txt": ["1 10", "3 30"],
    "validation.txt": ["3\t30", "4  40"],  # 3 30 again, in another purchase file
    "test.txt": ["1 20", " 5\t50 "],
}
BAD = {  # (file, line, reason)
    "collect.txt": [("", records.WRONG_COLUMN_COUNT), ("6", records.WRONG_COLUMN_COUNT)],
    "buy.txt": [("7 70 1", records.WRONG_COLUMN_COUNT), ("  \t", records.WRONG_COLUMN_COUNT)],
}
EXPECTED = [
    Interaction("1", "10", None, (1, 1)),
    Interaction("1", "20", None, (1, 1)),
    Interaction("2", "10", None, (1, 0)),
    Interaction("3", "30", None, (0, 1)),
    Interaction("4", "40", None, (0, 1)),
    Interaction("5", "50", None, (0, 1)),
]


def _write(path, lines):
    return write_lines(path, lines)


@pytest.fixture
def behaviors_dir(tmp_path):
    for name, lines in GOOD.items():
        # Bad lines in the middle, so that the good ones around them are still read.
        bad = [line for line, _ in BAD.get(name, [])]
        _write(tmp_path / name, lines[:1] + bad + lines[1:])
    _write(tmp_path / "cart.txt", ["9 90", "not a pair at all"])  # not in the mapping
    return tmp_path


def test_parse_behavior_files():
    assert parse_behavior_files(MAPPING) == (
        ("favorite", ("collect.txt",)),
        ("purchase", ("buy.txt", "validation.txt", "test.txt")),
    )
    assert parse_behavior_files(" b = x.txt , a=y.txt+x.txt,") == (
        ("b", ("x.txt",)),
        ("a", ("y.txt", "x.txt")),
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "needs --behavior_files"),
        (" , ", "needs --behavior_files"),
        ("favorite=collect.txt", "at least 2 tasks"),
        ("favorite=collect.txt,collect.txt", "is not task=file"),
        ("=collect.txt,purchase=buy.txt", "has no task name"),
        ("favorite=,purchase=buy.txt", "empty file name"),
        ("favorite=collect.txt,purchase=buy.txt+", "empty file name"),
        ("favorite=a.txt,purchase=b.txt,favorite=c.txt", "'favorite' is listed twice"),
        ("favorite=a.txt,purchase=b.txt+a.txt+b.txt", "'purchase' lists b.txt twice"),
    ],
)
def test_mapping_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_behavior_files(text)


def test_read_directory(behaviors_dir):
    config = InputConfig(input=str(behaviors_dir), format="behaviors", behavior_files=MAPPING)
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        result = p | ReadBehaviors(config)
        assert result.tasks == ("favorite", "purchase")
        assert result.has_time is False
        assert_that(result.interactions, equal_to(EXPECTED), label="Interactions")
        assert_that(
            result.rejected | beam.Map(lambda r: (r.source, r.row, r.reason, r.table)),
            equal_to(
                [
                    (name, line, reason, records.INTERACTIONS)
                    for name, bad in BAD.items()
                    for line, reason in bad
                ]
            ),
            label="Rejected",
        )
        assert_that(
            result.rejected | "Details" >> beam.Map(lambda r: r.detail),
            equal_to(
                [
                    "0 fields, want 2 (user item)",
                    "1 fields, want 2 (user item)",
                    "3 fields, want 2 (user item)",
                    "0 fields, want 2 (user item)",
                ]
            ),
            label="Details",
        )
        n_good = sum(len(lines) for lines in GOOD.values())
        n_bad = sum(len(bad) for bad in BAD.values())
        assert_that(
            result.rows_read, equal_to([(records.INTERACTIONS, n_good + n_bad)]), label="Read"
        )
        assert_that(result.rows_kept, equal_to([(records.INTERACTIONS, n_good)]), label="Kept")
        assert_that(balance(result), balanced([records.INTERACTIONS]), label="Balance")
        assert_that(result.user_features, equal_to([]), label="Users")
        assert_that(result.item_features, equal_to([]), label="Items")


def test_file_shared_by_tasks_is_read_once_and_gz_is_read(tmp_path):
    _write(tmp_path / "view.txt.gz", ["1 10", "2 20"])
    _write(tmp_path / "buy.txt", ["1 10", "3 30"])
    _write(tmp_path / "fav.txt", ["2 20"])
    mapping = "view=view.txt.gz+buy.txt,favorite=fav.txt,purchase=buy.txt"
    config = InputConfig(
        input=str(tmp_path), tasks=("view", "favorite", "purchase"), behavior_files=mapping
    )
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        result = p | ReadBehaviors(config)
        assert result.tasks == ("view", "favorite", "purchase")
        assert_that(
            result.interactions,
            equal_to(
                [
                    Interaction("1", "10", None, (1, 0, 1)),
                    Interaction("2", "20", None, (1, 1, 0)),
                    Interaction("3", "30", None, (1, 0, 1)),
                ]
            ),
            label="Interactions",
        )
        assert_that(result.rows_read, equal_to([(records.INTERACTIONS, 5)]), label="Read")
        assert_that(result.rejected, equal_to([]), label="Rejected")


def test_input_errors(behaviors_dir):
    def read(**kwargs):
        kwargs = {"input": str(behaviors_dir), "behavior_files": MAPPING, **kwargs}
        return ReadBehaviors(InputConfig(format="behaviors", **kwargs))

    with pytest.raises(InputError, match="needs --behavior_files"):
        read(behavior_files="")
    with pytest.raises(InputError, match="wish.txt does not exist"):
        read(behavior_files="favorite=collect.txt,wish=wish.txt")
    with pytest.raises(InputError, match="disagrees with the behavior files' tasks"):
        read(tasks=("purchase", "favorite"))
    with pytest.raises(InputError, match="disagrees"):
        read(tasks=("favorite", "purchase", "cart"))
    with pytest.raises(InputError, match="not nested"):
        read(nested_tasks=True)
    with pytest.raises(InputError, match="reads a directory"):
        read(input=str(behaviors_dir / "buy.txt"))
    with pytest.raises(InputError, match="reads a directory"):
        read(input=str(behaviors_dir / "absent"))
    assert read(tasks=("favorite", "purchase")).tasks == ("favorite", "purchase")
    assert [name for name, _, _ in read().files] == [
        "collect.txt",
        "buy.txt",
        "validation.txt",
        "test.txt",
    ]


def test_cli_end_to_end(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    collect = [f"{u} {(3 * u + k) % 16}" for u in range(10) for k in range(2)]
    buy = [f"{u} {(3 * u + k + 1) % 16}" for u in range(10) for k in range(2)]
    _write(data / "collect.txt", collect)
    _write(data / "buy.txt", buy[:12] + ["bad line here"])
    _write(data / "test.txt", buy[12:])
    pairs = {tuple(line.split()) for line in collect + buy}
    out = tmp_path / "out"
    code = run.main(
        [
            "--runner", "FnApiRunner", "--input", str(data), "--output", str(out),
            "--format", "behaviors",
            "--behavior_files", "favorite=collect.txt,purchase=buy.txt+test.txt",
            "--negatives_per_positive", "1", "--fanouts", "2,1", "--seed", "3",
        ]
    )  # fmt: skip
    assert code == 0
    stats = json.load(open(os.path.join(out, "stats.json")))
    assert stats["tasks"] == ["favorite", "purchase"]
    assert stats["config"]["format"] == "behaviors"
    assert stats["rows"]["interactions"] == {"read": 41, "kept": 40, "rejected": 1}
    assert stats["rejected"]["interactions"] == {"wrong_column_count": 1}
    examples = stats["examples"].values()
    assert sum(e["positives_favorite"] for e in examples) == len(set(collect))
    assert sum(e["positives_purchase"] for e in examples) == len(set(buy))
    assert sum(e["rows"] for e in examples) == 2 * len(pairs) - stats["negatives_short"]
    assert stats["samples"]["train"] > 0
    assert os.path.exists(os.path.join(out, "_SUCCESS"))
