"""New fills as events for the ingest service's client-streaming RPC (StreamEvents)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time

import polars as pl

from wavepod.common.v1 import values_pb2
from wavepod.ingest.v1 import ingest_pb2
from wavepod.values import to_timestamp, to_value


def _value(value: object) -> values_pb2.Value:
    # Dates travel as ISO strings, as customers' JSON payloads carry them.
    if isinstance(value, date) and not isinstance(value, datetime):
        return to_value(value.isoformat())
    return to_value(value)


def fill_events(fills: pl.DataFrame, dataset: str = "fills") -> Iterator[ingest_pb2.Event]:
    """One event per fill row; the fill id is the event id (what makes re-sends idempotent)."""
    for row in fills.iter_rows(named=True):
        stamp = to_timestamp(datetime.combine(row["fill_date"], time(), tzinfo=UTC))
        yield ingest_pb2.Event(
            dataset=dataset,
            event_id=row["fill_id"],
            event_time=stamp,
            payload=values_pb2.Row(values={k: _value(v) for k, v in row.items()}),
        )
