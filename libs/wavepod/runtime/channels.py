"""Outgoing gRPC channels: every call gets a deadline, the service's bearer token and the
caller's trace context (OpenTelemetry's client interceptors: a client span per call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from wavepod.runtime.settings import ServiceSettings
from wavepod.runtime.tls import channel_credentials


class _OutgoingDefaults(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Sets a deadline on calls that have none and adds the authorization header."""

    def __init__(self, timeout: float, token: str | None) -> None:
        self._timeout = timeout
        self._auth = (("authorization", f"Bearer {token}"),) if token else ()

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *self._auth)
        return details._replace(
            timeout=self._timeout if details.timeout is None else details.timeout,
            metadata=metadata,
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def connect(
    target: str,
    settings: ServiceSettings,
    *,
    timeout: float | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A channel whose calls all carry a deadline and the service's token; TLS (and the
    service's client certificate) when the settings name a CA."""
    token = settings.outgoing_token()
    interceptors = [
        _OutgoingDefaults(timeout or settings.outgoing_timeout_seconds, token),
        *aio_client_interceptors(),
    ]
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, credentials, options=list(options), interceptors=interceptors
    )
