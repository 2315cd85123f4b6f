"""The gateway's one way into ingest: governed datasets it registers on first use and
fills with events (idempotent by event id, so a retried send lands once)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

import grpc

from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime.status import FailedPrecondition, Unavailable

R = TypeVar("R")


class IngestClient:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = ingest_pb2_grpc.IngestServiceStub(channel)
        self._timeout = timeout
        self._registered: set[str] = set()

    async def _call(self, what: str, call: Awaitable[R]) -> R:
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"ingest ({what}): {error.details()}") from None
            raise FailedPrecondition(
                f"ingest ({what}) answered {error.code().name}: {error.details()}"
            ) from None

    async def send(
        self, schema: ingest_pb2.Schema, events: Sequence[ingest_pb2.Event]
    ) -> ingest_pb2.StreamEventsResponse:
        """Registers `schema` once per process (re-registering the same definition is a
        no-op in ingest), then streams `events` into its dataset."""
        if schema.dataset not in self._registered:
            await self._call(
                "register schema",
                self._stub.RegisterSchema(
                    ingest_pb2.RegisterSchemaRequest(schema=schema), timeout=self._timeout
                ),
            )
            self._registered.add(schema.dataset)
        return await self._call(
            f"stream {schema.dataset}",
            self._stub.StreamEvents(iter(events), timeout=self._timeout),
        )
