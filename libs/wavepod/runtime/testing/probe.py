"""The probe service used by runtime tests, runnable as a process for signal tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from wavepod.runtime.auth import current_principal
from wavepod.runtime.server import Registration, ServiceApp, run
from wavepod.runtime.status import FieldViolation, InvalidArgument
from wavepod.runtime.testing import probe_pb2, probe_pb2_grpc


class ProbeServicer(probe_pb2_grpc.ProbeServiceServicer):
    async def Echo(
        self, request: probe_pb2.ProbeRequest, context: grpc.aio.ServicerContext
    ) -> probe_pb2.ProbeReply:
        if request.behaviour == "raise":
            raise RuntimeError("secret internal detail")
        if request.behaviour == "invalid":
            raise InvalidArgument(FieldViolation("text", "must name a known probe"))
        if request.behaviour == "sleep":
            await asyncio.sleep(request.sleep_seconds)
        principal = current_principal.get()
        return probe_pb2.ProbeReply(
            text=request.text, principal=principal.name if principal else ""
        )

    async def Count(
        self, request: probe_pb2.ProbeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[probe_pb2.ProbeReply]:
        for i in range(3):
            if request.behaviour == "raise_midstream" and i == 1:
                raise ValueError("broke mid-stream")
            yield probe_pb2.ProbeReply(text=f"{request.text}{i}")


def probe_app(flush_marker: str | None = None) -> ServiceApp:
    def flush() -> None:
        if flush_marker:
            with open(flush_marker, "w") as f:
                f.write("flushed")

    return ServiceApp(
        name="probe",
        registrations=[
            Registration(
                probe_pb2.DESCRIPTOR.services_by_name["ProbeService"],
                ProbeServicer(),
                probe_pb2_grpc.add_ProbeServiceServicer_to_server,
            )
        ],
        flush_hooks=[flush],
        method_roles={"/wavepod.runtime.testing.ProbeService/Count": frozenset({"admin"})},
    )


if __name__ == "__main__":
    import os

    run("probe", lambda _settings: probe_app(os.environ.get("PROBE_FLUSH_MARKER")))
