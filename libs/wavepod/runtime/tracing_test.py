"""Server spans: continued from the caller's traceparent, named and attributed as
OpenTelemetry's gRPC conventions say, with the call's status code at the end."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from wavepod.runtime.errors import UncaughtErrorInterceptor
from wavepod.runtime.testing import probe_pb2, probe_pb2_grpc
from wavepod.runtime.testing.probe import ProbeServicer
from wavepod.runtime.tracing import ServerSpanInterceptor

ECHO = "/wavepod.runtime.testing.ProbeService/Echo"
COUNT = "/wavepod.runtime.testing.ProbeService/Count"


def _calls(behaviours: list[tuple[str, str]]) -> tuple[list[ReadableSpan], ReadableSpan]:
    """Makes each (method, behaviour) call under one client span; returns the server's
    spans and the client's."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def main() -> None:
        server = grpc.aio.server(
            interceptors=[ServerSpanInterceptor(provider), UncaughtErrorInterceptor()]
        )
        probe_pb2_grpc.add_ProbeServiceServicer_to_server(ProbeServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = probe_pb2_grpc.ProbeServiceStub(channel)
                with provider.get_tracer("client").start_as_current_span("client"):
                    carrier: dict[str, str] = {}
                    propagate.inject(carrier)
                    for method, behaviour in behaviours:
                        request = probe_pb2.ProbeRequest(text="x", behaviour=behaviour)
                        try:
                            if method == ECHO:
                                await stub.Echo(request, metadata=tuple(carrier.items()))
                            else:
                                call = stub.Count(request, metadata=tuple(carrier.items()))
                                _ = [reply async for reply in call]
                        except grpc.aio.AioRpcError:
                            pass
        finally:
            await server.stop(None)

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    client = next(s for s in spans if s.name == "client")
    return [s for s in spans if s is not client], client


def test_a_server_span_continues_the_callers_trace_with_conventional_attributes() -> None:
    (span,), client = _calls([(ECHO, "")])
    assert span.name == ECHO and span.kind == SpanKind.SERVER
    assert span.context.trace_id == client.context.trace_id
    assert span.parent is not None and span.parent.span_id == client.context.span_id
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "wavepod.runtime.testing.ProbeService",
        "rpc.method": "Echo",
        "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
    }
    assert span.status.status_code == StatusCode.UNSET


@pytest.mark.parametrize(
    ("method", "behaviour", "code", "error"),
    [
        (ECHO, "invalid", grpc.StatusCode.INVALID_ARGUMENT, False),  # the caller's fault
        (ECHO, "raise", grpc.StatusCode.INTERNAL, True),
        (COUNT, "", grpc.StatusCode.OK, False),
        (COUNT, "raise_midstream", grpc.StatusCode.INTERNAL, True),
    ],
)
def test_the_status_code_ends_the_span_and_server_faults_are_errors(
    method: str, behaviour: str, code: grpc.StatusCode, error: bool
) -> None:
    (span,), _ = _calls([(method, behaviour)])
    assert span.name == method
    assert (span.attributes or {})["rpc.grpc.status_code"] == code.value[0]
    assert (span.status.status_code == StatusCode.ERROR) is error
    assert span.end_time is not None and span.start_time is not None


def test_each_call_gets_its_own_span() -> None:
    spans, _ = _calls([(ECHO, ""), (ECHO, ""), (COUNT, "")])
    assert [s.name for s in spans] == [ECHO, ECHO, COUNT]
    assert len({s.context.span_id for s in spans}) == 3
