"""Tmall IJCAI-15 raw logs -> one Interaction per (user, item) pair.

The input is the "format 1" release of the IJCAI-15 repeat-buyers data set:

* `user_log_format1.csv` (or `.csv.gz`), with the header
  `user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type`. One row is
  one action of a user on an item in 2014: `time_stamp` is the day as MMDD
  written as an integer (`511` is May 11, `1111` is Nov 11) and `action_type`
  is 0 click, 1 add-to-cart, 2 purchase, 3 add-to-favourite. `brand_id` is
  empty on some rows: that is a missing feature, not a bad row.
* `user_info_format1.csv` (or `.csv.gz`, optional), with the header
  `user_id,age_range,gender`; the two features may be empty or `NULL`.

`config.input` is a directory (or a glob) holding these files, found by name
(the other files of the release, e.g. `train_format1.csv`, are ignored; if both
`.csv` and `.csv.gz` are there the `.csv` is read), or the path of the log
file, in which case `user_info_format1.csv(.gz)` is looked for next to it.
`config.user_features` names the user-info file explicitly if set.

Mapping:

* Interactions: the actions are aggregated per (user, item) pair, with a
  CombinePerKey, into one Interaction per pair that has any action. Its two
  labels are, in order, "favorite" (the pair has an action 3) and "purchase"
  (the pair has an action 2); `config.tasks` may rename them (2 names, taken
  in that order). Its timestamp is the pair's latest action day, as the unix
  seconds of 00:00 UTC that day. The tasks are not nested (a purchase without
  a favourite is common), so `config.nested_tasks` must be False.
* Item features: `cat_id`, `seller_id` and `brand_id` as strings. An item's
  value of each is the one seen on most of its log rows, ties going to the
  smallest string (see :class:`~beam_pipelines.adapters.base.MostFrequentFeatures`);
  empty values are not counted.
* User features: `age_range` and `gender` as strings, skipping empty and
  `NULL` values (the release's "unknown" codes, age_range 0 and gender 2, are
  kept as categories). A user listed twice gets the most frequent values.

Rows are counted per table: log rows under "interactions" (kept = the rows
that entered the aggregation, not the number of pairs), user-info rows under
"user_features". Log rows are rejected for `wrong_column_count`, `empty_id`
(user or item), `bad_timestamp` (not a valid 2014 MMDD) and `bad_action_type`
(not 0..3), in that order of checks; user-info rows for `wrong_column_count`
and `empty_id`.
"""

from __future__ import annotations

import calendar
import datetime

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_pipelines import records
from beam_pipelines.adapters.base import (
    InputError,
    MostFrequentFeatures,
    ReadRows,
    adapter_result,
    basename,
    columns_of,
    count_per_table,
    list_files,
    require_columns,
    row_text,
)
from beam_pipelines.config import InputConfig
from beam_pipelines.validation import REJECTED, parse_id, reject

DEFAULT_TASKS = ("favorite", "purchase")
LOG_NAMES = ("user_log_format1.csv", "user_log_format1.csv.gz")
USER_INFO_NAMES = ("user_info_format1.csv", "user_info_format1.csv.gz")
LOG_COLUMNS = ("user_id", "item_id", "cat_id", "seller_id", "brand_id", "time_stamp", "action_type")
USER_INFO_COLUMNS = ("user_id", "age_range", "gender")
ITEM_FEATURE_COLUMNS = ("cat_id", "seller_id", "brand_id")
USER_FEATURE_COLUMNS = ("age_range", "gender")
YEAR = 2014
FAVORITE = "3"
PURCHASE = "2"
ACTION_TYPES = ("0", "1", "2", "3")

_ITEMS = "items"


def parse_mmdd(raw) -> int | None:
    """Returns the unix seconds of 00:00 UTC on 2014-MM-DD, or None if not a valid MMDD."""
    text = str(raw).strip() if raw is not None else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 4:
        return None
    month, day = divmod(int(text), 100)
    try:
        date = datetime.date(YEAR, month, day)
    except ValueError:
        return None
    return calendar.timegm(date.timetuple())


def _is_missing(value) -> bool:
    return value is None or str(value).strip().upper() in ("", "NULL")


def _pick(files: list[str], names: tuple[str, ...]) -> str | None:
    """Returns the file among `files` with the first of `names`, or None."""
    by_name = {basename(f): f for f in files}
    for name in names:
        if name in by_name:
            return by_name[name]
    return None


def _next_to(path: str, names: tuple[str, ...]) -> str | None:
    """Returns the first of `names` that exists in the directory of `path`, or None."""
    directory = FileSystems.split(path)[0]
    for name in names:
        candidate = FileSystems.join(directory, name)
        if FileSystems.exists(candidate):
            return candidate
    return None


class ReadTmall(beam.PTransform):
    """Reads the Tmall IJCAI-15 user log and user info (see the module docstring).

    Args:
      config: The InputConfig.

    Raises:
      InputError: If there is no user log, a file lacks a column, the tasks are
        not 2, or nested tasks are asked for (checked before the job starts).
    """

    def __init__(self, config: InputConfig):
        super().__init__()
        self.config = config
        self.tasks = tuple(config.tasks) or DEFAULT_TASKS
        if len(self.tasks) != 2:
            raise InputError(
                f"tmall has 2 tasks (favorite, purchase), got {len(self.tasks)}: "
                f"{', '.join(self.tasks)}"
            )
        if config.nested_tasks:
            raise InputError("tmall tasks (favorite, purchase) are not nested")
        files = list_files(config.input)
        # Whether the input names one file (the log) rather than a directory or glob.
        single = len(files) == 1 and basename(files[0]) == basename(config.input)
        log = _pick(files, LOG_NAMES) or (files[0] if single else None)
        if log is None:
            raise InputError(f"no {' or '.join(LOG_NAMES)} at {config.input!r}")
        if config.user_features:
            user_info = config.user_features
            if not FileSystems.exists(user_info):
                raise InputError(f"user info file {user_info!r} does not exist")
        else:
            user_info = _pick(files, USER_INFO_NAMES)
            if user_info is None and single:
                user_info = _next_to(log, USER_INFO_NAMES)
        self.log = log
        self.user_info = user_info
        self.headers = {log: columns_of(log)}
        require_columns(self.headers[log], LOG_COLUMNS, basename(log))
        if user_info:
            self.headers[user_info] = columns_of(user_info)
            require_columns(self.headers[user_info], USER_INFO_COLUMNS, basename(user_info))

    def expand(self, pbegin):
        rows, unparsable = pbegin | "ReadLog" >> ReadRows(
            [self.log], "csv", records.INTERACTIONS, self.headers
        )
        rejected = [unparsable]
        read = [
            count_per_table(
                (rows, unparsable) | "AllReadLog" >> beam.Flatten(),
                records.INTERACTIONS,
                "ReadLog",
            )
        ]
        actions = rows | "ValidateLog" >> beam.ParDo(_ValidateAction()).with_outputs(
            REJECTED, _ITEMS, main="actions"
        )
        rejected.append(actions[REJECTED])
        kept = [count_per_table(actions.actions, records.INTERACTIONS, "KeptLog")]
        interactions = (
            actions.actions
            | "PerPair" >> beam.CombinePerKey(_PairLabels())
            | "ToInteraction"
            >> beam.MapTuple(lambda pair, v: records.Interaction(pair[0], pair[1], v[0], v[1:]))
        )
        item_features = actions[_ITEMS] | "PerItem" >> beam.CombinePerKey(MostFrequentFeatures())

        if self.user_info:
            table = records.USER_FEATURES
            info, info_unparsable = pbegin | "ReadUserInfo" >> ReadRows(
                [self.user_info], "csv", table, self.headers
            )
            rejected.append(info_unparsable)
            read.append(
                count_per_table(
                    (info, info_unparsable) | "AllReadUserInfo" >> beam.Flatten(),
                    table,
                    "ReadUserInfo",
                )
            )
            users = info | "ValidateUserInfo" >> beam.ParDo(_ValidateUser()).with_outputs(
                REJECTED, main="users"
            )
            rejected.append(users[REJECTED])
            kept.append(count_per_table(users.users, table, "KeptUserInfo"))
            user_features = users.users | "PerUser" >> beam.CombinePerKey(MostFrequentFeatures())
        else:
            user_features = pbegin | "NoUserInfo" >> beam.Create([])

        return adapter_result(
            interactions=interactions,
            rejected=rejected,
            user_features=user_features,
            item_features=item_features,
            rows_read=read,
            rows_kept=kept,
            tasks=self.tasks,
            has_time=True,
        )


class _ValidateAction(beam.DoFn):
    """(source, log row) -> ((user, item), (seconds, favorite, purchase)) + item features."""

    def process(self, element):
        source, row = element
        table = records.INTERACTIONS
        user = parse_id(row["user_id"])
        item = parse_id(row["item_id"])
        if user is None or item is None:
            detail = "user_id is empty" if user is None else "item_id is empty"
            yield reject(records.EMPTY_ID, table, source, row_text(row), detail)
            return
        seconds = parse_mmdd(row["time_stamp"])
        if seconds is None:
            detail = f"time_stamp {row['time_stamp']!r} is not a valid MMDD day of {YEAR}"
            yield reject(records.BAD_TIMESTAMP, table, source, row_text(row), detail)
            return
        action = str(row["action_type"]).strip()
        if action not in ACTION_TYPES:
            detail = f"action_type {row['action_type']!r} is not 0, 1, 2 or 3"
            yield reject(records.BAD_ACTION_TYPE, table, source, row_text(row), detail)
            return
        yield (user, item), (seconds, int(action == FAVORITE), int(action == PURCHASE))
        features = {
            name: str(row[name]).strip()
            for name in ITEM_FEATURE_COLUMNS
            if not _is_missing(row[name])
        }
        yield beam.pvalue.TaggedOutput(_ITEMS, (item, features))


class _PairLabels(beam.CombineFn):
    """Combines a pair's (seconds, favorite, purchase) actions: latest time, any label."""

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, action):
        if accumulator is None:
            return tuple(action)
        return tuple(max(a, b) for a, b in zip(accumulator, action, strict=True))

    def merge_accumulators(self, accumulators):
        merged = None
        for accumulator in accumulators:
            if accumulator is not None:
                merged = self.add_input(merged, accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator


class _ValidateUser(beam.DoFn):
    """(source, user-info row) -> (user, {age_range, gender})."""

    def process(self, element):
        source, row = element
        user = parse_id(row["user_id"])
        if user is None:
            yield reject(
                records.EMPTY_ID, records.USER_FEATURES, source, row_text(row), "user_id is empty"
            )
            return
        yield (
            user,
            {
                name: str(row[name]).strip()
                for name in USER_FEATURE_COLUMNS
                if not _is_missing(row[name])
            },
        )
