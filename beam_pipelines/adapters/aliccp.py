"""Ali-CCP (Alibaba Click and Conversion Prediction) raw files -> Interactions.

The input is a directory (or a glob) holding the files as Alibaba publishes
them, found by name; all of them are read together, since the pipeline redoes
the train/test split:

* `sample_skeleton_*.csv` (e.g. `sample_skeleton_train.csv`,
  `sample_skeleton_test.csv`; `.csv.gz` too), one impression per line:
  `sample_id,click,conversion,common_feature_index,feature_count,feature_list`.
* `common_features_*.csv` (likewise), one user/context per line:
  `common_feature_index,feature_count,feature_list`.

There are no header lines. A feature list is entries
`field_id \\x01 feature_id \\x03 value` joined by `\\x02` (no commas), and
`feature_count` is its number of entries. Field ids are strings such as `205`
or `109_14`.

Mapping:

* Skeleton lines are joined to their common-features line on
  `common_feature_index` with a CoGroupByKey. Each joined skeleton line becomes
  one Interaction: user = field 101 of the common-features line, item = field
  205 of the skeleton line, labels = (click, conversion), in the order of the
  tasks ("click", "conversion" unless `config.tasks` renames them), no
  timestamp. `config.nested_tasks` (on by default for aliccp) is applied as
  given (conversion without click is then rejected).
* Side features are categorical: feature `f<field_id>` = the feature id (the
  value after `\\x03` is ignored). When a field has several entries in one
  line, the first-listed one is kept.
* User features: every field of the common-features line except 101, keyed by
  its user id. Item features: every skeleton field whose id starts with "2"
  except 205 (206 category, 207 shop, 210 intention, 216 brand), keyed by the
  item id. A user or item seen on several lines gets, per feature, its most
  frequent value, ties going to the smallest string.
* The other skeleton fields (context and user-item cross features such as
  301, 508, 509, 702, 853) are not used; the Beam counter
  `aliccp/unused_context_fields` counts the (interaction, field) pairs left
  out.

Rows are counted per table: skeleton lines under "interactions", common-features
lines under "common_features" (a valid common-features line is kept even when
no skeleton line refers to it). Skeleton lines are rejected for, in order of
checks, `wrong_column_count` (not 6 fields), `bad_feature_list` (an entry not
`field\\x01feature\\x03value` with a numeric value, or `feature_count` not the
number of entries), `empty_id` (no field 205), `bad_label` (click or conversion
not 0/1), `nested_label_violation`, and `missing_common_features` (an empty
index, or no valid common-features line with that index). Common-features lines
are rejected for `wrong_column_count` (not 3 fields), `bad_feature_list` and
`empty_id` (empty index, or no field 101). If two valid common-features lines
share an index, the smallest user id among them is used.
"""

from __future__ import annotations

import fnmatch

import apache_beam as beam

from beam_pipelines import records
from beam_pipelines.adapters.base import (
    InputError,
    MostFrequentFeatures,
    adapter_result,
    basename,
    count_per_table,
    list_files,
)
from beam_pipelines.config import InputConfig
from beam_pipelines.validation import REJECTED, reject, to_interaction

DEFAULT_TASKS = ("click", "conversion")
SKELETON_PATTERNS = ("sample_skeleton_*.csv", "sample_skeleton_*.csv.gz")
COMMON_PATTERNS = ("common_features_*.csv", "common_features_*.csv.gz")
USER_FIELD = "101"
ITEM_FIELD = "205"
ITEM_FIELD_PREFIX = "2"
SKELETON_COLUMNS = 6
COMMON_COLUMNS = 3

_ITEMS = "items"


def parse_feature_list(text: str, count: str) -> dict[str, str] | str:
    """Parses an Ali-CCP feature list.

    Args:
      text: Entries `field\\x01feature\\x03value` joined by `\\x02`.
      count: The line's feature_count, which must equal the number of entries.

    Returns:
      {field id: feature id}, keeping a field's first-listed entry, or a
      message saying what is wrong with the list.
    """
    try:
        expected = int(count.strip())
    except ValueError:
        return f"feature_count {count!r} is not an integer"
    entries = text.split("\x02") if text else []
    if len(entries) != expected:
        return f"{len(entries)} feature entries, feature_count says {expected}"
    fields: dict[str, str] = {}
    for entry in entries:
        field, _, rest = entry.partition("\x01")
        feature, _, value = rest.partition("\x03")
        if not field or not feature or "\x01" in rest or "\x03" in value or not _is_number(value):
            return f"feature entry {entry!r} is not field\\x01feature\\x03value"
        fields.setdefault(field, feature)
    return fields


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _matching(files: list[str], patterns: tuple[str, ...]) -> list[str]:
    return [f for f in files if any(fnmatch.fnmatchcase(basename(f), p) for p in patterns)]


class ReadAliCCP(beam.PTransform):
    """Reads Ali-CCP sample skeletons and common features (see the module docstring).

    Args:
      config: The InputConfig.

    Raises:
      InputError: If the input has no skeleton or no common-features files, or
        the tasks are not 2 (checked before the job starts).
    """

    def __init__(self, config: InputConfig):
        super().__init__()
        self.config = config
        self.tasks = tuple(config.tasks) or DEFAULT_TASKS
        if len(self.tasks) != 2:
            raise InputError(
                f"aliccp has 2 tasks (click, conversion), got {len(self.tasks)}: "
                f"{', '.join(self.tasks)}"
            )
        files = list_files(config.input)
        self.skeleton_files = _matching(files, SKELETON_PATTERNS)
        self.common_files = _matching(files, COMMON_PATTERNS)
        if not self.skeleton_files:
            raise InputError(f"no sample_skeleton_*.csv at {config.input!r}")
        if not self.common_files:
            raise InputError(f"no common_features_*.csv at {config.input!r}")

    def expand(self, pbegin):
        skeleton_lines = (
            pbegin
            | "SkeletonFiles" >> beam.Create(self.skeleton_files)
            | "ReadSkeleton" >> beam.io.ReadAllFromText(with_filename=True)
        )
        common_lines = (
            pbegin
            | "CommonFiles" >> beam.Create(self.common_files)
            | "ReadCommon" >> beam.io.ReadAllFromText(with_filename=True)
        )
        skeleton = skeleton_lines | "ParseSkeleton" >> beam.ParDo(
            _ParseSkeleton(self.tasks, self.config.nested_tasks)
        ).with_outputs(REJECTED, main="rows")
        common = common_lines | "ParseCommon" >> beam.ParDo(_ParseCommon()).with_outputs(
            REJECTED, main="rows"
        )
        joined = (
            {
                "skeleton": skeleton.rows,
                "common": common.rows | "CommonUser" >> beam.MapTuple(lambda i, u, _: (i, u)),
            }
            | "JoinOnIndex" >> beam.CoGroupByKey()
            | "AddUser"
            >> beam.ParDo(_AddUser()).with_outputs(REJECTED, _ITEMS, main="interactions")
        )
        user_features = (
            common.rows
            | "UserFeatures" >> beam.MapTuple(lambda _, user, features: (user, features))
            | "PerUser" >> beam.CombinePerKey(MostFrequentFeatures())
        )
        item_features = joined[_ITEMS] | "PerItem" >> beam.CombinePerKey(MostFrequentFeatures())
        read = [
            count_per_table(skeleton_lines, records.INTERACTIONS, "ReadSkeleton"),
            count_per_table(common_lines, records.COMMON_FEATURES, "ReadCommon"),
        ]
        kept = [
            count_per_table(joined.interactions, records.INTERACTIONS, "KeptSkeleton"),
            count_per_table(common.rows, records.COMMON_FEATURES, "KeptCommon"),
        ]
        rejected = [skeleton[REJECTED], common[REJECTED], joined[REJECTED]]
        return adapter_result(
            interactions=joined.interactions,
            rejected=rejected,
            user_features=user_features,
            item_features=item_features,
            rows_read=read,
            rows_kept=kept,
            tasks=self.tasks,
            has_time=False,
        )


class _ParseSkeleton(beam.DoFn):
    """(path, line) -> (index, (source, line, item, labels, item features, unused fields)).

    The labels are validated with :func:`to_interaction`, the index standing in
    for the user id, which only the join with the common features provides.
    """

    def __init__(self, tasks: tuple[str, ...], nested: bool):
        self.tasks = tasks
        self.nested = nested

    def process(self, element):
        path, line = element
        source = basename(path)
        table = records.INTERACTIONS
        columns = line.split(",")
        if len(columns) != SKELETON_COLUMNS:
            detail = f"{len(columns)} fields, a sample skeleton line has {SKELETON_COLUMNS}"
            yield reject(records.WRONG_COLUMN_COUNT, table, source, line, detail)
            return
        _, click, conversion, index, count, feature_list = columns
        fields = parse_feature_list(feature_list, count)
        if isinstance(fields, str):
            yield reject(records.BAD_FEATURE_LIST, table, source, line, fields)
            return
        item = fields.get(ITEM_FIELD)
        if item is None:
            detail = f"no field {ITEM_FIELD} (item id)"
            yield reject(records.EMPTY_ID, table, source, line, detail)
            return
        index = index.strip()
        result = to_interaction(
            index or "-",
            item,
            [click, conversion],
            tasks=self.tasks,
            nested=self.nested,
            has_time=False,
        )
        if not isinstance(result, records.Interaction):
            yield reject(result[0], table, source, line, result[1])
            return
        if not index:
            detail = "common_feature_index is empty"
            yield reject(records.MISSING_COMMON_FEATURES, table, source, line, detail)
            return
        item_features = {}
        unused = 0
        for field, feature in fields.items():
            if field == ITEM_FIELD:
                continue
            if field.startswith(ITEM_FIELD_PREFIX):
                item_features[f"f{field}"] = feature
            else:
                unused += 1
        yield index, (source, line, result.item_id, result.labels, item_features, unused)


class _ParseCommon(beam.DoFn):
    """(path, line) -> (index, user id, user features)."""

    def process(self, element):
        path, line = element
        source = basename(path)
        table = records.COMMON_FEATURES
        columns = line.split(",")
        if len(columns) != COMMON_COLUMNS:
            detail = f"{len(columns)} fields, a common features line has {COMMON_COLUMNS}"
            yield reject(records.WRONG_COLUMN_COUNT, table, source, line, detail)
            return
        index, count, feature_list = columns
        fields = parse_feature_list(feature_list, count)
        if isinstance(fields, str):
            yield reject(records.BAD_FEATURE_LIST, table, source, line, fields)
            return
        index = index.strip()
        user = fields.get(USER_FIELD)
        if not index or user is None:
            detail = "common_feature_index is empty" if not index else f"no field {USER_FIELD}"
            yield reject(records.EMPTY_ID, table, source, line, detail)
            return
        features = {f"f{f}": feature for f, feature in fields.items() if f != USER_FIELD}
        yield index, user, features


class _AddUser(beam.DoFn):
    """(index, {skeleton, common}) -> Interactions with their user, and item features."""

    def __init__(self):
        self.unused = beam.metrics.Metrics.counter("aliccp", "unused_context_fields")

    def process(self, element):
        _, grouped = element
        user = min(grouped["common"], default=None)
        for source, line, item, labels, item_features, unused in grouped["skeleton"]:
            if user is None:
                detail = "no common features line with this common_feature_index"
                yield reject(
                    records.MISSING_COMMON_FEATURES, records.INTERACTIONS, source, line, detail
                )
                continue
            self.unused.inc(unused)
            yield records.Interaction(user, item, None, labels)
            yield beam.pvalue.TaggedOutput(_ITEMS, (item, item_features))
