"""The canonical records that flow between the preprocessing stages.

See docs/architecture.md, "Adapters: raw logs to canonical records".

Every adapter turns its raw format into :class:`Interaction` records, and every
row it cannot use into a :class:`Rejected` record that carries the reason; the
rest of the pipeline only ever sees canonical records.
"""

from __future__ import annotations

import json
from typing import NamedTuple

# Rejection reasons: the `reason` field of Rejected records and the names of
# the Beam counters `rejected_<reason>`.
WRONG_COLUMN_COUNT = "wrong_column_count"
UNPARSABLE_ROW = "unparsable_row"
MISSING_COLUMN = "missing_column"
EMPTY_ID = "empty_id"
BAD_LABEL = "bad_label"
BAD_TIMESTAMP = "bad_timestamp"
NESTED_VIOLATION = "nested_label_violation"
BAD_ACTION_TYPE = "bad_action_type"
BAD_FEATURE_LIST = "bad_feature_list"
MISSING_COMMON_FEATURES = "missing_common_features"
BAD_FEATURE_VALUE = "bad_feature_value"

# Input tables.
INTERACTIONS = "interactions"
USER_FEATURES = "user_features"
ITEM_FEATURES = "item_features"
COMMON_FEATURES = "common_features"  # Ali-CCP common-features lines

SPLITS = ("train", "valid", "test")


class Interaction(NamedTuple):
    """One exposure of an item to a user with its K task labels.

    Attributes:
      user_id: The user's id.
      item_id: The item's id.
      timestamp: Seconds since the epoch, or None where the log has no time.
      labels: One 0/1 label per task, in the order of the configured tasks.
    """

    user_id: str
    item_id: str
    timestamp: int | None
    labels: tuple[int, ...]


class Rejected(NamedTuple):
    """A raw row that did not become an Interaction, and why.

    Attributes:
      reason: One of the reason constants of this module.
      table: The kind of input, e.g. "interactions" or "user_features".
      source: Where the row came from (a file name or the adapter's name).
      row: The raw row as text.
      detail: A human-readable explanation.
    """

    reason: str
    table: str
    source: str
    row: str
    detail: str

    def to_json(self) -> str:
        """Returns the record as one JSON line for `OUT/rejected/`."""
        return json.dumps(self._asdict(), ensure_ascii=False, sort_keys=True)


def pair_key(user_id: str, item_id: str) -> str:
    """Returns a key that names a (user, item) pair unambiguously."""
    return f"{user_id}\x1f{item_id}"
