"""New fills as events for the ingest service's client-streaming RPC (StreamEvents)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time

import polars as pl
from google.protobuf.timestamp_pb2 import Timestamp

from wavepod.common.v1 import values_pb2
from wavepod.ingest.v1 import ingest_pb2


def _value(value: object) -> values_pb2.Value:
    if value is None:
        return values_pb2.Value()
    if isinstance(value, bool):
        return values_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return values_pb2.Value(int_value=value)
    if isinstance(value, float):
        return values_pb2.Value(double_value=value)
    if isinstance(value, date):
        return values_pb2.Value(string_value=value.isoformat())
    return values_pb2.Value(string_value=str(value))


def fill_events(fills: pl.DataFrame, dataset: str = "fills") -> Iterator[ingest_pb2.Event]:
    """One event per fill row; the fill id is the event id (what makes re-sends idempotent)."""
    for row in fills.iter_rows(named=True):
        stamp = Timestamp()
        stamp.FromDatetime(datetime.combine(row["fill_date"], time(), tzinfo=UTC))
        yield ingest_pb2.Event(
            dataset=dataset,
            event_id=row["fill_id"],
            event_time=stamp,
            payload=values_pb2.Row(values={k: _value(v) for k, v in row.items()}),
        )
