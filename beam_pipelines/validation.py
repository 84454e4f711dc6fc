"""Validation of raw rows: each becomes a canonical record or a Rejected one.

Shared by the adapters, so that every format rejects the same problems for the
same reasons (see the reason constants in :mod:`beam_pipelines.records`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import apache_beam as beam

from beam_pipelines import records
from beam_pipelines.records import Interaction, Rejected

REJECTED = "rejected"


def parse_id(raw) -> str | None:
    """Returns the id as a stripped string, or None if missing or empty."""
    if raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip()
    return text or None


def parse_label(raw) -> int | None:
    """Returns 0 or 1, or None if the value is not a 0/1 label."""
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int | float):
        return int(raw) if raw in (0, 1) else None
    if raw is None:
        return None
    text = str(raw).strip()
    if text in ("0", "1"):
        return int(text)
    if text in ("0.0", "1.0"):
        return int(float(text))
    return None


def parse_timestamp(raw) -> int | None:
    """Returns seconds since the epoch, or None if unparsable.

    Accepts integer seconds (as int, integral float or digits) and ISO 8601
    date-times (naive ones are taken as UTC).
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    text = str(raw).strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
        return int(value) if value.is_integer() else None
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


def to_interaction(
    user_raw,
    item_raw,
    label_raws: Sequence,
    time_raw=None,
    *,
    tasks: Sequence[str],
    nested: bool,
    has_time: bool,
) -> Interaction | tuple[str, str]:
    """Validates one row's fields.

    Args:
      user_raw: The raw user id.
      item_raw: The raw item id.
      label_raws: One raw label per task.
      time_raw: The raw timestamp (ignored unless `has_time`).
      tasks: Task names, in label order.
      nested: Whether task k may be 1 only where task k-1 is 1 (e.g. no
        conversion without click).
      has_time: Whether the input has a time column.

    Returns:
      The Interaction, or (reason, detail) if the row is bad.
    """
    user = parse_id(user_raw)
    item = parse_id(item_raw)
    if user is None or item is None:
        return records.EMPTY_ID, "user id is empty" if user is None else "item id is empty"
    labels = []
    for task, raw in zip(tasks, label_raws, strict=True):
        label = parse_label(raw)
        if label is None:
            return records.BAD_LABEL, f"label {task}={raw!r} is not 0 or 1"
        labels.append(label)
    if nested:
        for k in range(1, len(labels)):
            if labels[k] and not labels[k - 1]:
                return (
                    records.NESTED_VIOLATION,
                    f"{tasks[k]}=1 without {tasks[k - 1]}=1 (tasks are nested)",
                )
    timestamp = None
    if has_time:
        timestamp = parse_timestamp(time_raw)
        if timestamp is None:
            return records.BAD_TIMESTAMP, f"timestamp {time_raw!r} is not seconds or ISO 8601"
    return Interaction(user, item, timestamp, tuple(labels))


def reject(reason: str, table: str, source: str, row, detail: str) -> beam.pvalue.TaggedOutput:
    """Returns a Rejected record on the `rejected` output and counts it."""
    beam.metrics.Metrics.counter("rejected", f"{table}_{reason}").inc()
    text = row if isinstance(row, str) else repr(row)
    return beam.pvalue.TaggedOutput(REJECTED, Rejected(reason, table, source, text, detail))
