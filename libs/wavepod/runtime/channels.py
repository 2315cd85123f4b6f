"""Outgoing gRPC channels: every call gets a deadline, the service's bearer token and the
caller's trace context (OpenTelemetry's client interceptors: a client span per call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from wavepod.runtime.settings import ServiceSettings
from wavepod.runtime.tls import channel_credentials


class _OutgoingDefaults:
    """Sets a deadline on calls that have none and adds the authorization header.

    grpc.aio files an interceptor under the first call kind it implements only, so each
    kind gets its own instance (see `_outgoing_defaults`).
    """

    def __init__(self, timeout: float, token: str | None) -> None:
        self._timeout = timeout
        self._auth = (("authorization", f"Bearer {token}"),) if token else ()

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *self._auth)
        return details._replace(
            timeout=self._timeout if details.timeout is None else details.timeout,
            metadata=metadata,
        )


class _UnaryUnaryDefaults(_OutgoingDefaults, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStreamDefaults(_OutgoingDefaults, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnaryDefaults(_OutgoingDefaults, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _StreamStreamDefaults(_OutgoingDefaults, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def _outgoing_defaults(timeout: float, token: str | None) -> list[_OutgoingDefaults]:
    kinds = (_UnaryUnaryDefaults, _UnaryStreamDefaults, _StreamUnaryDefaults, _StreamStreamDefaults)
    return [kind(timeout, token) for kind in kinds]


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
        *_outgoing_defaults(timeout or settings.outgoing_timeout_seconds, token),
        *aio_client_interceptors(),
    ]
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, credentials, options=list(options), interceptors=interceptors
    )
