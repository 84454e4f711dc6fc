"""Tests for beam_pipelines.adapters.aliccp: join, features, rejects, row counts."""

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines import records
from beam_pipelines.adapters.aliccp import ReadAliCCP, parse_feature_list
from beam_pipelines.adapters.base import InputError
from beam_pipelines.config import InputConfig
from beam_pipelines.records import Interaction
from tests.beam_pipelines.adapters.row_balance import balance, balanced


def _entries(pairs, value="1.0"):
    """Returns a feature list; `pairs` is (field, feature) pairs or "field:feature ..."."""
    if isinstance(pairs, str):
        pairs = [pair.split(":") for pair in pairs.split()]
    return "\x02".join(f"{field}\x01{feature}\x03{value}" for field, feature in pairs)


def _skeleton(sample, click, conversion, index, pairs, count=None, value="1.0"):
    count = len(pairs.split()) if count is None else count
    return f"{sample},{click},{conversion},{index},{count},{_entries(pairs, value)}"


def _common(index, pairs, count=None):
    count = len(pairs.split()) if count is None else count
    return f"{index},{count},{_entries(pairs)}"


COMMON_TRAIN = [
    _common("c1", "101:u1 121:a 124:m"),
    _common("c2", "101:u2 121:b 109_14:x 109_14:y"),
    _common("c3", "101:u1 121:a2 124:m"),
    _common("c9", "101:u9"),  # no skeleton line refers to it: still kept
]
COMMON_TEST = [_common("c10", "101:u3 125:3")]
BAD_COMMON = [
    ("c4,1", records.WRONG_COLUMN_COUNT),
    ("c4,1,101\x01u4\x031.0,extra", records.WRONG_COLUMN_COUNT),
    (_common("c5", "101:u5", count=2), records.BAD_FEATURE_LIST),
    ("c6,1,101\x01u6", records.BAD_FEATURE_LIST),
    ("c6,1,101\x03u6\x011.0", records.BAD_FEATURE_LIST),
    (_common("c7", "121:z"), records.EMPTY_ID),
    (_common("", "101:u8"), records.EMPTY_ID),
]
SKELETON_TRAIN = [
    _skeleton(1, 1, 0, "c1", "205:i1 206:cat1 207:shop1 301:p1 508:x"),
    _skeleton(2, 1, 1, "c1", "205:i2 206:cat2 216:br2 210:ia 210:ib"),
    _skeleton(3, 0, 0, "c2", "205:i1 206:cat9 207:shop2"),
    _skeleton(4, 1, 0, "c3", "205:i1 206:cat9"),
]
SKELETON_TEST = [_skeleton(20, 1, 0, "c10", "205:i3 853:z")]
NESTED_VIOLATION = _skeleton(7, 0, 1, "c1", "205:i1")
BAD_SKELETON = [
    ("5,1,0,c1,1", records.WRONG_COLUMN_COUNT),
    (_skeleton(6, 2, 0, "c1", "205:i1"), records.BAD_LABEL),
    (_skeleton(6, 1, "", "c1", "205:i1"), records.BAD_LABEL),
    (NESTED_VIOLATION, records.NESTED_VIOLATION),
    (_skeleton(8, 1, 0, "c1", "205:i1 206:c", count=3), records.BAD_FEATURE_LIST),
    (_skeleton(8, 1, 0, "c1", "205:i1", count="one"), records.BAD_FEATURE_LIST),
    ("9,1,0,c1,1,205\x01i1", records.BAD_FEATURE_LIST),
    (_skeleton(10, 1, 0, "c1", "205:i1", value="abc"), records.BAD_FEATURE_LIST),
    (_skeleton(11, 1, 0, "c1", "206:cat1"), records.EMPTY_ID),
    (_skeleton(12, 1, 0, "c404", "205:i1"), records.MISSING_COMMON_FEATURES),
    (_skeleton(13, 1, 0, "c5", "205:i1"), records.MISSING_COMMON_FEATURES),
    (_skeleton(14, 1, 0, "", "205:i1"), records.MISSING_COMMON_FEATURES),
]

EXPECTED_INTERACTIONS = [
    Interaction("u1", "i1", None, (1, 0)),
    Interaction("u1", "i2", None, (1, 1)),
    Interaction("u2", "i1", None, (0, 0)),
    Interaction("u1", "i1", None, (1, 0)),  # via c3, another context of u1
    Interaction("u3", "i3", None, (1, 0)),
]
EXPECTED_USERS = [
    ("u1", {"f121": "a", "f124": "m"}),  # f121: tie a/a2 -> smallest
    ("u2", {"f121": "b", "f109_14": "x"}),  # first-listed entry of 109_14
    ("u3", {"f125": "3"}),
    ("u9", {}),
]
EXPECTED_ITEMS = [
    ("i1", {"f206": "cat9", "f207": "shop1"}),  # cat9 2x vs cat1 1x; tie shop1/shop2
    ("i2", {"f206": "cat2", "f210": "ia", "f216": "br2"}),
    ("i3", {}),
]
UNUSED_FIELDS = 3  # 301 and 508 of sample 1, 853 of sample 20


@pytest.fixture
def aliccp_dir(tmp_path):
    def write(name, lines):
        (tmp_path / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    write("sample_skeleton_train.csv", SKELETON_TRAIN + [line for line, _ in BAD_SKELETON])
    write("sample_skeleton_test.csv", SKELETON_TEST)
    write("common_features_train.csv", COMMON_TRAIN + [line for line, _ in BAD_COMMON])
    write("common_features_test.csv", COMMON_TEST)
    write("README.txt", ["ignored"])
    return tmp_path


def test_parse_feature_list():
    assert parse_feature_list(_entries([("205", "i1"), ("210", "a"), ("210", "b")]), "3") == {
        "205": "i1",
        "210": "a",
    }
    assert parse_feature_list("", "0") == {}
    assert parse_feature_list(_entries([("205", "i1")], value="0.69315"), " 1 ") == {"205": "i1"}
    for text, count in [
        (_entries([("205", "i1")]), "2"),
        (_entries([("205", "i1")]), "x"),
        ("205\x01i1", "1"),
        ("205\x01\x031.0", "1"),
        ("\x01i1\x031.0", "1"),
        ("205\x01i1\x031.0\x031.0", "1"),
        ("205\x01i1\x01x\x031.0", "1"),
        (_entries([("205", "i1")], value=""), "1"),
    ]:
        assert isinstance(parse_feature_list(text, count), str), repr(text)


def test_read_directory(aliccp_dir):
    p = test_pipeline.TestPipeline(runner="FnApiRunner")
    result = p | ReadAliCCP(InputConfig(input=str(aliccp_dir), format="aliccp", nested_tasks=True))
    assert result.tasks == ("click", "conversion")
    assert result.has_time is False
    assert_that(result.interactions, equal_to(EXPECTED_INTERACTIONS), label="Interactions")
    assert_that(
        result.rejected | beam.Map(lambda r: (r.reason, r.table, r.row)),
        equal_to(
            [(reason, records.INTERACTIONS, line) for line, reason in BAD_SKELETON]
            + [(reason, records.COMMON_FEATURES, line) for line, reason in BAD_COMMON]
        ),
        label="Rejected",
    )
    assert_that(result.user_features, equal_to(EXPECTED_USERS), label="Users")
    assert_that(result.item_features, equal_to(EXPECTED_ITEMS), label="Items")
    skeleton_lines = len(SKELETON_TRAIN) + len(SKELETON_TEST) + len(BAD_SKELETON)
    common_lines = len(COMMON_TRAIN) + len(COMMON_TEST) + len(BAD_COMMON)
    assert_that(
        result.rows_read,
        equal_to([(records.INTERACTIONS, skeleton_lines), (records.COMMON_FEATURES, common_lines)]),
        label="Read",
    )
    assert_that(
        result.rows_kept,
        equal_to(
            [
                (records.INTERACTIONS, len(EXPECTED_INTERACTIONS)),
                (records.COMMON_FEATURES, len(COMMON_TRAIN) + len(COMMON_TEST)),
            ]
        ),
        label="Kept",
    )
    assert_that(
        balance(result),
        balanced([records.INTERACTIONS, records.COMMON_FEATURES]),
        label="Balance",
    )
    run = p.run()
    run.wait_until_finish()
    counters = run.metrics().query(
        MetricsFilter().with_namespace("aliccp").with_name("unused_context_fields")
    )["counters"]
    assert sum(c.committed for c in counters) == UNUSED_FIELDS


def test_not_nested_and_renamed_tasks(tmp_path):
    (tmp_path / "sample_skeleton_train.csv").write_text(NESTED_VIOLATION + "\n")
    (tmp_path / "common_features_train.csv").write_text(COMMON_TRAIN[0] + "\n")
    config = InputConfig(
        input=str(tmp_path), format="aliccp", tasks=("clk", "buy"), nested_tasks=False
    )
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        result = p | ReadAliCCP(config)
        assert result.tasks == ("clk", "buy")
        assert_that(
            result.interactions,
            equal_to([Interaction("u1", "i1", None, (0, 1))]),
            label="Interactions",
        )
        assert_that(result.rejected, equal_to([]), label="Rejected")


def test_input_errors(tmp_path):
    with pytest.raises(InputError, match="no input files"):
        ReadAliCCP(InputConfig(input=str(tmp_path), format="aliccp"))
    (tmp_path / "common_features_train.csv").write_text(COMMON_TRAIN[0] + "\n")
    with pytest.raises(InputError, match="no sample_skeleton_"):
        ReadAliCCP(InputConfig(input=str(tmp_path), format="aliccp"))
    (tmp_path / "common_features_train.csv").unlink()
    (tmp_path / "sample_skeleton_train.csv").write_text(SKELETON_TRAIN[0] + "\n")
    with pytest.raises(InputError, match="no common_features_"):
        ReadAliCCP(InputConfig(input=str(tmp_path), format="aliccp"))
    (tmp_path / "common_features_test.csv.gz").write_bytes(b"")
    with pytest.raises(InputError, match="2 tasks"):
        ReadAliCCP(InputConfig(input=str(tmp_path), format="aliccp", tasks=("click",)))
    transform = ReadAliCCP(InputConfig(input=str(tmp_path), format="aliccp"))
    assert [f.rsplit("/", 1)[-1] for f in transform.common_files] == ["common_features_test.csv.gz"]
