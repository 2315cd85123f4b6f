"""Python values <-> `wavepod.common.v1.Value`: the one place typed values cross the wire."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from wavepod.common.v1 import values_pb2


def to_timestamp(moment: datetime | date) -> Timestamp:
    """Naive datetimes are UTC; a date is its midnight UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def to_value(value: object) -> values_pb2.Value:
    """None and NaN become an unset value (null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return values_pb2.Value()
    if isinstance(value, bool):
        return values_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return values_pb2.Value(int_value=value)
    if isinstance(value, float):
        return values_pb2.Value(double_value=value)
    if isinstance(value, str):
        return values_pb2.Value(string_value=value)
    if isinstance(value, datetime | date):
        return values_pb2.Value(timestamp_value=to_timestamp(value))
    raise TypeError(f"no wire type for {type(value).__name__}")


def from_value(value: values_pb2.Value) -> object:
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "timestamp_value":
        return value.timestamp_value.ToDatetime()
    return getattr(value, kind)


def rows_from_columns(columns: Iterable[Any], count: int) -> list[dict[str, object]]:
    """`count` rows from feature columns (`wavepod.feature.v1.FeatureColumn`: one typed
    array per feature, nulls by position), as online feature lookups answer."""
    rows: list[dict[str, object]] = [{} for _ in range(count)]
    for column in columns:
        kind = column.WhichOneof("values")
        values = list(getattr(column, kind).values) if kind else []
        nulls = set(column.null_positions)
        for i, row in enumerate(rows):
            row[column.name] = None if i in nulls or i >= len(values) else values[i]
    return rows
