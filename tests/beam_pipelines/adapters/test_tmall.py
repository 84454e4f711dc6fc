"""Tests for beam_pipelines.adapters.tmall: aggregation, features, rejects, row counts."""

import datetime
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines import records
from beam_pipelines.adapters.base import InputError
from beam_pipelines.adapters.tmall import ReadTmall, parse_mmdd
from beam_pipelines.config import InputConfig
from beam_pipelines.records import Interaction
from tests.beam_pipelines.adapters.row_balance import balance, balanced
from tests.beam_pipelines.adapters.text_files import write_lines

LOG_HEADER = "user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type"
GOOD_LOG = [
    "1,10,c1,s1,b1,511,0",
    "1,10,c1,s1,b1,1111,2",
    "1,10,c1,s1,,1015,3",  # empty brand: a missing feature
    "1,20,c2,s2,,601,0",
    "2,10,c9,s1,b2,1111,3",
    "2,20,c3,s2,,701,2",
    "2,20,c3,s2,NULL,0701,1",
    "3,30,c4,s3,b3,1231,1",
    "4,40,cB,s4,,511,0",
    "5,40,cA,s4,,512,0",
]
BAD_LOG = [
    ("3,30,c4,s3,b3,511", records.WRONG_COLUMN_COUNT),
    ("3,30,c4,s3,b3,511,0,9", records.WRONG_COLUMN_COUNT),
    (",30,c4,s3,b3,511,0", records.EMPTY_ID),
    ("3, ,c4,s3,b3,511,0", records.EMPTY_ID),
    ("3,30,c4,s3,b3,1341,0", records.BAD_TIMESTAMP),  # month 13
    ("3,30,c4,s3,b3,230,0", records.BAD_TIMESTAMP),  # Feb 30
    ("3,30,c4,s3,b3,229,0", records.BAD_TIMESTAMP),  # 2014 is not a leap year
    ("3,30,c4,s3,b3,,0", records.BAD_TIMESTAMP),
    ("3,30,c4,s3,b3,5.11,0", records.BAD_TIMESTAMP),
    ("3,30,c4,s3,b3,511,4", records.BAD_ACTION_TYPE),
    ("3,30,c4,s3,b3,511,click", records.BAD_ACTION_TYPE),
]
INFO_HEADER = "user_id,age_range,gender"
GOOD_INFO = ["1,3,1", "2,,NULL", "4,0,2", "4,0,1"]
BAD_INFO = [(",4,1", records.EMPTY_ID), ("5,3", records.WRONG_COLUMN_COUNT)]


def _day(month, day):
    return int(datetime.datetime(2014, month, day, tzinfo=datetime.UTC).timestamp())


EXPECTED_INTERACTIONS = [
    Interaction("1", "10", _day(11, 11), (1, 1)),
    Interaction("1", "20", _day(6, 1), (0, 0)),
    Interaction("2", "10", _day(11, 11), (1, 0)),
    Interaction("2", "20", _day(7, 1), (0, 1)),
    Interaction("3", "30", _day(12, 31), (0, 0)),
    Interaction("4", "40", _day(5, 11), (0, 0)),
    Interaction("5", "40", _day(5, 12), (0, 0)),
]
EXPECTED_ITEMS = [
    ("10", {"cat_id": "c1", "seller_id": "s1", "brand_id": "b1"}),  # c1 3x vs c9 1x
    ("20", {"cat_id": "c3", "seller_id": "s2"}),  # no brand on any row
    ("30", {"cat_id": "c4", "seller_id": "s3", "brand_id": "b3"}),
    ("40", {"cat_id": "cA", "seller_id": "s4"}),  # tie cB/cA: smallest string
]
EXPECTED_USERS = [
    ("1", {"age_range": "3", "gender": "1"}),
    ("2", {}),
    ("4", {"age_range": "0", "gender": "1"}),  # listed twice: gender tie 2/1 -> "1"
]


def _write(path, header, lines):
    return write_lines(path, [header, *lines])


@pytest.fixture
def tmall_dir(tmp_path):
    _write(tmp_path / "user_log_format1.csv", LOG_HEADER, GOOD_LOG + [r for r, _ in BAD_LOG])
    _write(tmp_path / "user_info_format1.csv", INFO_HEADER, GOOD_INFO + [r for r, _ in BAD_INFO])
    (tmp_path / "train_format1.csv").write_text("user_id,merchant_id,label\n1,2,0\n")
    return tmp_path


def test_parse_mmdd():
    assert parse_mmdd("511") == _day(5, 11)
    assert parse_mmdd(" 1111 ") == _day(11, 11)
    assert parse_mmdd("0101") == _day(1, 1)
    for bad in ("", "0", "100", "1300", "1232", "229", "5.11", "-511", "12345", None, "²¹"):
        assert parse_mmdd(bad) is None, bad


def test_read_directory(tmall_dir):
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        result = p | ReadTmall(InputConfig(input=str(tmall_dir), format="tmall"))
        assert result.tasks == ("favorite", "purchase")
        assert result.has_time is True
        assert_that(result.interactions, equal_to(EXPECTED_INTERACTIONS), label="Interactions")
        assert_that(
            result.rejected | beam.Map(lambda r: (r.reason, r.table)),
            equal_to(
                [(reason, records.INTERACTIONS) for _, reason in BAD_LOG]
                + [(reason, records.USER_FEATURES) for _, reason in BAD_INFO]
            ),
            label="Rejected",
        )
        assert_that(
            result.rejected
            | "Sources" >> beam.Map(lambda r: (r.source, r.table))
            | beam.Distinct(),
            equal_to(
                [
                    ("user_log_format1.csv", records.INTERACTIONS),
                    ("user_info_format1.csv", records.USER_FEATURES),
                ]
            ),
            label="RejectedSources",
        )
        assert_that(result.item_features, equal_to(EXPECTED_ITEMS), label="Items")
        assert_that(result.user_features, equal_to(EXPECTED_USERS), label="Users")
        assert_that(
            result.rows_read,
            equal_to(
                [
                    (records.INTERACTIONS, len(GOOD_LOG) + len(BAD_LOG)),
                    (records.USER_FEATURES, len(GOOD_INFO) + len(BAD_INFO)),
                ]
            ),
            label="Read",
        )
        assert_that(
            result.rows_kept,
            equal_to(
                [
                    (records.INTERACTIONS, len(GOOD_LOG)),
                    (records.USER_FEATURES, len(GOOD_INFO)),
                ]
            ),
            label="Kept",
        )
        assert_that(
            balance(result),
            balanced([records.INTERACTIONS, records.USER_FEATURES]),
            label="Balance",
        )


def test_read_gzipped_log_file_with_user_info_next_to_it(tmp_path):
    log = _write(tmp_path / "user_log_format1.csv.gz", LOG_HEADER, GOOD_LOG)
    _write(tmp_path / "user_info_format1.csv.gz", INFO_HEADER, GOOD_INFO)
    config = InputConfig(input=str(log), format="tmall", tasks=("fav", "buy"))
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        result = p | ReadTmall(config)
        assert result.tasks == ("fav", "buy")
        assert_that(result.interactions, equal_to(EXPECTED_INTERACTIONS), label="Interactions")
        assert_that(result.rejected, equal_to([]), label="Rejected")
        assert_that(result.user_features, equal_to(EXPECTED_USERS), label="Users")
        assert_that(
            result.rows_kept,
            equal_to([(records.INTERACTIONS, len(GOOD_LOG)), (records.USER_FEATURES, 4)]),
            label="Kept",
        )


def test_log_without_user_info(tmp_path):
    _write(tmp_path / "user_log_format1.csv", LOG_HEADER, GOOD_LOG[:2])
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        result = p | ReadTmall(InputConfig(input=str(tmp_path), format="tmall"))
        assert_that(
            result.interactions,
            equal_to([Interaction("1", "10", _day(11, 11), (0, 1))]),
            label="Interactions",
        )
        assert_that(result.user_features, equal_to([]), label="Users")
        assert_that(result.rows_read, equal_to([(records.INTERACTIONS, 2)]), label="Read")


def test_input_errors(tmp_path):
    with pytest.raises(InputError, match="no input files"):
        ReadTmall(InputConfig(input=str(tmp_path / "absent"), format="tmall"))
    _write(tmp_path / "user_info_format1.csv", INFO_HEADER, GOOD_INFO)
    with pytest.raises(InputError, match="no user_log_format1.csv"):
        ReadTmall(InputConfig(input=str(tmp_path), format="tmall"))
    log = _write(tmp_path / "user_log_format1.csv", LOG_HEADER, GOOD_LOG)
    with pytest.raises(InputError, match="2 tasks"):
        ReadTmall(InputConfig(input=str(tmp_path), tasks=("a", "b", "c")))
    with pytest.raises(InputError, match="not nested"):
        ReadTmall(InputConfig(input=str(tmp_path), nested_tasks=True))
    with pytest.raises(InputError, match="does not exist"):
        ReadTmall(InputConfig(input=str(log), user_features=str(tmp_path / "nope.csv")))
    other = tmp_path / "other"
    other.mkdir()
    _write(other / "log.csv", "user_id,item_id,time_stamp,action_type", ["1,2,511,0"])
    with pytest.raises(InputError, match="'cat_id' is not in log.csv"):
        ReadTmall(InputConfig(input=str(other / "log.csv")))
    with pytest.raises(InputError, match="no user_log_format1.csv"):
        ReadTmall(InputConfig(input=str(other)))


def test_finds_files_by_name_and_reads_log_file_input(tmp_path):
    _write(tmp_path / "user_log_format1.csv", LOG_HEADER, GOOD_LOG)
    _write(tmp_path / "user_info_format1.csv", INFO_HEADER, GOOD_INFO)
    by_dir = ReadTmall(InputConfig(input=str(tmp_path)))
    by_file = ReadTmall(InputConfig(input=str(tmp_path / "user_log_format1.csv")))
    for transform in (by_dir, by_file):
        assert transform.log.endswith("user_log_format1.csv")
        assert transform.user_info.endswith("user_info_format1.csv")
    assert Counter(t for t in by_dir.headers) == Counter([by_dir.log, by_dir.user_info])
