"""Ships the prediction log's spool files into the lake, through ingest.

The spool (prediction_log.py) is the durable copy: a file is moved to `shipped/` only
after ingest accepted all its events. A crash between the two re-sends the file on the
next pass, and ingest drops the repeats by event id (prediction id and route), so each
record lands once. While ingest is down the spool grows and the gateway keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from gateway.ingest_client import IngestClient
from wavepod.common.v1 import values_pb2
from wavepod.ingest.v1 import ingest_pb2 as T
from wavepod.runtime.status import ServiceError
from wavepod.values import to_timestamp, to_value

log = logging.getLogger(__name__)

DATASET = "prediction_log"
SHIPPED = "shipped"
PREDICTION_LOG_SCHEMA = T.Schema(
    dataset=DATASET,
    version="1.0",
    columns=[
        T.Column(name="record_id", type=T.COLUMN_TYPE_STRING),
        T.Column(name="prediction_id", type=T.COLUMN_TYPE_STRING),
        T.Column(name="route", type=T.COLUMN_TYPE_STRING),
        T.Column(name="model", type=T.COLUMN_TYPE_STRING),
        T.Column(name="version", type=T.COLUMN_TYPE_STRING),
        T.Column(name="entity_id", type=T.COLUMN_TYPE_STRING, nullable=True),
        T.Column(name="prediction", type=T.COLUMN_TYPE_FLOAT64),
        T.Column(name="latency_ms", type=T.COLUMN_TYPE_FLOAT64),
        T.Column(name="caller", type=T.COLUMN_TYPE_STRING, nullable=True),
        T.Column(name="trace_id", type=T.COLUMN_TYPE_STRING, nullable=True),
        T.Column(name="request_id", type=T.COLUMN_TYPE_STRING, nullable=True),
        T.Column(name="inputs", type=T.COLUMN_TYPE_STRING),  # the row as JSON
        T.Column(name="at", type=T.COLUMN_TYPE_TIMESTAMP),
    ],
    primary_key=["record_id"],
    event_time_column="at",
    rules=[T.QualityRule(id="prediction_record_unique", kind="unique")],
)


def to_event(record: dict[str, object]) -> T.Event:
    at = datetime.fromtimestamp(float(record["at"]), UTC)  # type: ignore[arg-type]
    # A prediction has one record per route that scored it (champion and shadow).
    record_id = f"{record['prediction_id']}/{record['route']}"
    payload = {
        **{c.name: record.get(c.name) or None for c in PREDICTION_LOG_SCHEMA.columns},
        "record_id": record_id,
        "prediction": float(record["prediction"]),  # type: ignore[arg-type]
        "latency_ms": float(record["latency_ms"]),  # type: ignore[arg-type]
        "inputs": json.dumps(record.get("inputs", {}), sort_keys=True, default=str),
        "at": at,
    }
    return T.Event(
        dataset=DATASET,
        event_id=record_id,
        event_time=to_timestamp(at),
        payload=values_pb2.Row(
            values={k: to_value(v) for k, v in payload.items() if v is not None}
        ),
    )


class LogShipper:
    def __init__(self, spool: Path, ingest: IngestClient, interval_seconds: float) -> None:
        self.spool = Path(spool)
        self._ingest = ingest
        self._interval = interval_seconds
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.shipped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(ServiceError):
                await self.ship()

    def pending(self) -> list[Path]:
        return sorted(self.spool.glob("date=*/*.jsonl"))

    async def ship(self) -> int:
        """Ships every spool file; stops at the first that ingest does not take."""
        async with self._lock:
            records = 0
            for path in self.pending():
                lines = (await asyncio.to_thread(path.read_text)).splitlines()
                events = [to_event(json.loads(line)) for line in lines if line]
                try:
                    reply = await self._ingest.send(PREDICTION_LOG_SCHEMA, events)
                except ServiceError as error:
                    log.warning(
                        "prediction log not shipped; kept in the spool",
                        extra={
                            "file": path.name,
                            "pending": len(self.pending()),
                            "error": str(error),
                        },
                    )
                    raise
                if reply.quarantined:
                    log.warning(
                        "ingest quarantined prediction records",
                        extra={"file": path.name, "quarantined": reply.quarantined},
                    )
                target = self.spool / SHIPPED / path.parent.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                records += len(events)
            self.shipped += records
            return records

    async def close(self) -> None:
        """Stops the loop and ships what the final flush wrote, if ingest takes it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(ServiceError):
            await self.ship()
        log.info(
            "prediction log shipping stopped",
            extra={"shipped": self.shipped, "left_in_spool": len(self.pending())},
        )
