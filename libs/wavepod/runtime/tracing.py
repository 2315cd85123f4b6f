"""Server spans for every RPC: the parent from the caller's W3C `traceparent` metadata,
the semantic-convention attributes, the status code at the end.

opentelemetry-instrumentation-grpc's aio server interceptor does the same, but rebuilds
the method handler, parses the peer address and proxies the servicer context on every
call. This one wraps each method once (`HandlerInterceptor`) and does per call only what
the span needs: on the inference server (single-row ModelInfer, 64 in flight, 2 cores),
alternating runs gave 1,776-2,091 rows/s with OpenTelemetry's and 2,071-2,200 with this
one. Spans flow to the same tracer provider and exporter as before.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from wavepod.runtime.handlers import HandlerInterceptor, wrap_handler

# Codes that make a server span an error (OpenTelemetry's gRPC semantic conventions):
# the others (NOT_FOUND, INVALID_ARGUMENT, ...) are the client's, not the server's.
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class _ServerSpan:
    """The span around one call, current while the handler runs."""

    __slots__ = ("_attributes", "_context", "_name", "_span", "_token", "_tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        attributes: dict[str, str],
        context: grpc.aio.ServicerContext,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._context = context

    async def __aenter__(self) -> None:
        carrier = dict(self._context.invocation_metadata() or ())
        parent = propagate.extract(carrier)
        self._span = self._tracer.start_span(
            self._name, context=parent, kind=SpanKind.SERVER, attributes=self._attributes
        )
        self._token = otel_context.attach(trace.set_span_in_context(self._span, parent))

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        span = self._span
        try:
            code = self._context.code()
            if not isinstance(code, grpc.StatusCode):
                code = grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code in SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, self._context.details() or code.name))
            if isinstance(error, Exception) and not isinstance(error, grpc.aio.AbortError):
                span.record_exception(error)
        finally:
            span.end()
            otel_context.detach(self._token)


class ServerSpanInterceptor(HandlerInterceptor):
    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__()
        self._tracer = trace.get_tracer("wavepod.runtime.tracing", tracer_provider=tracer_provider)

    def handle(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        name = details.method
        service, _, method = name.lstrip("/").partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

        def around(context: grpc.aio.ServicerContext, _request: Any) -> _ServerSpan:
            return _ServerSpan(self._tracer, name, attributes, context)

        return wrap_handler(handler, around)
