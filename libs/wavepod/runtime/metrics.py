"""Per-RPC metrics: call duration by method and status code (OpenTelemetry)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from opentelemetry import metrics

from wavepod.runtime.handlers import HandlerInterceptor, wrap_handler


class RpcMetricsInterceptor(HandlerInterceptor):
    def __init__(self) -> None:
        super().__init__()
        # The global meter provider is a no-op unless telemetry export is configured.
        meter = metrics.get_meter("wavepod.runtime")
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Server-side RPC duration"
        )

    def handle(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        method = details.method

        @asynccontextmanager
        async def around(context: grpc.aio.ServicerContext, _request: Any) -> AsyncIterator[None]:
            started = time.perf_counter()
            try:
                yield
            finally:
                code = context.code() or grpc.StatusCode.OK
                name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                self._duration.record(
                    (time.perf_counter() - started) * 1000,
                    {"rpc.method": method, "rpc.grpc.status_code": name},
                )

        return wrap_handler(handler, around)
