"""The one gRPC server runtime every wavepod service runs on.

`run(app)` gives a service: grpc.aio server, grpc.health.v1 health reflecting readiness,
server reflection, OpenTelemetry spans per RPC, structured logs, uncaught errors turned
into INTERNAL with an error id, optional bearer-token auth, optional TLS / mutual TLS
(wavepod.runtime.tls), and graceful shutdown on
SIGTERM/SIGINT (NOT_SERVING, stop accepting, drain in-flight calls within the deadline,
run flush hooks, exit 0).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import grpc
import uvloop
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from wavepod.runtime.audit import AuditLog
from wavepod.runtime.audit_interceptor import AuditInterceptor
from wavepod.runtime.auth import AuthInterceptor, TokenStore
from wavepod.runtime.errors import UncaughtErrorInterceptor
from wavepod.runtime.logs import configure_logging
from wavepod.runtime.metrics import RpcMetricsInterceptor
from wavepod.runtime.settings import RegistryClientSettings, ServiceSettings, load_settings
from wavepod.runtime.telemetry import configure_telemetry
from wavepod.runtime.tls import server_credentials
from wavepod.runtime.tracing import ServerSpanInterceptor
from wavepod.runtime.unbuilt import unbuilt

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)

Hook = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True)
class Registration:
    """One gRPC service implementation to mount: its descriptor and how to add it."""

    descriptor: ServiceDescriptor
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]

    @classmethod
    def of(cls, pb2: ModuleType, pb2_grpc: ModuleType, service: str, servicer: Any) -> Registration:
        """Looks up `service` in generated modules, e.g. `of(x_pb2, x_pb2_grpc, "XService", s)`."""
        return cls(
            pb2.DESCRIPTOR.services_by_name[service],
            servicer,
            getattr(pb2_grpc, f"add_{service}Servicer_to_server"),
        )

    @classmethod
    def unbuilt(
        cls, pb2: ModuleType, pb2_grpc: ModuleType, service: str, capability: str
    ) -> Registration:
        """Mounts `service` with every RPC answering UNIMPLEMENTED naming `capability`."""
        base = getattr(pb2_grpc, f"{service}Servicer")
        servicer = unbuilt(base, pb2.DESCRIPTOR.services_by_name[service], capability)()
        return cls.of(pb2, pb2_grpc, service, servicer)


@dataclass(frozen=True)
class ServiceApp:
    name: str
    registrations: Sequence[Registration]
    version: str = "0.1.0"
    # Reports SERVING only once this returns True (e.g. a backend is reachable).
    readiness: Callable[[], Awaitable[bool]] | None = None
    # Run after the drain on shutdown (flush buffers, close stores).
    flush_hooks: Sequence[Hook] = ()
    # Roles per full method name, used when auth is on (see wavepod.runtime.auth).
    method_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Admin RPCs (full method names) the server records in the audit log (settings'
    # audit_log), each call with its caller and status (see audit_interceptor.py).
    audited_methods: frozenset[str] = frozenset()
    # Admin RPCs that record their own actions in that log (gateway, evaluator): the
    # server records only the calls auth refuses.
    self_audited_methods: frozenset[str] = frozenset()


@dataclass
class RunningServer:
    app: ServiceApp
    settings: ServiceSettings
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    audit: AuditInterceptor | None = None  # its counts of repeated refusals are written last

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *(r.descriptor.full_name for r in self.app.registrations)):
            await self.health.set(name, status)

    async def stop(self) -> None:
        """Graceful stop: NOT_SERVING, drain within the deadline, then flush hooks."""
        await self.set_serving(False)
        log.info("draining", extra={"drain_seconds": self.settings.drain_seconds})
        await self.server.stop(grace=self.settings.drain_seconds)
        if self.audit is not None:
            await self.audit.close()
        for hook in self.app.flush_hooks:
            result = hook()
            if inspect.isawaitable(result):
                await result
        log.info("stopped")


def _interceptors(app: ServiceApp, settings: ServiceSettings) -> list[grpc.aio.ServerInterceptor]:
    # Outermost first: the span exists before auth and error handling log anything.
    interceptors: list[grpc.aio.ServerInterceptor] = [ServerSpanInterceptor()]
    interceptors.append(RpcMetricsInterceptor())
    tokens = None
    if settings.auth_tokens_file is not None:
        tokens = TokenStore(settings.auth_tokens_file)
    if app.audited_methods or app.self_audited_methods:  # outside auth: sees its refusals
        audit = AuditLog(settings.audit_log or Path(".wavepod") / f"{app.name}-audit.jsonl")
        interceptors.append(
            AuditInterceptor(
                audit,
                app.audited_methods,
                app.self_audited_methods,
                tokens,
                settings.audit_refusal_window_seconds,
            )
        )
    if tokens is not None:
        interceptors.append(AuthInterceptor(tokens, app.method_roles))
    interceptors.append(UncaughtErrorInterceptor())
    return interceptors


async def start_server(app: ServiceApp, settings: ServiceSettings) -> RunningServer:
    interceptors = _interceptors(app, settings)
    server = grpc.aio.server(interceptors=interceptors)
    for registration in app.registrations:
        registration.add_to_server(registration.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [r.descriptor.full_name for r in app.registrations]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    address = f"{settings.host}:{settings.port}"
    credentials = server_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    await server.start()
    audit = next((i for i in interceptors if isinstance(i, AuditInterceptor)), None)
    running = RunningServer(app, settings, server, health_servicer, port, audit)
    await running.set_serving(False)
    if app.readiness is None or await app.readiness():
        await running.set_serving(True)
    log.info(
        "serving",
        extra={
            "address": running.address,
            "services": names,
            "tls": credentials is not None,
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        },
    )
    return running


async def serve(app: ServiceApp, settings: ServiceSettings) -> int:
    running = await start_server(app, settings)
    # What start-up allocated (modules, stubs, loaded models) lives as long as the process:
    # frozen, a full collection no longer walks it. Unfrozen, each full collection stalled
    # the inference server for 80-110 ms under load: its p99.
    gc.freeze()
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await stop_requested.wait()
    log.info("shutdown requested")
    await running.stop()
    return 0


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop a server runs on, by its setting's name (None: asyncio's own).

    uvloop, alternating quick runs of the inference benchmark (2 cores): single-row
    ModelInfer at 8 in flight 1,958 / 1,832 -> 2,400 / 2,281 rows/s unbatched and
    2,242 / 2,354 -> 2,620 / 2,550 batched; the gateway's figures moved within noise.
    """
    return uvloop.new_event_loop if event_loop == "uvloop" else None


def run(
    name: str,
    build: Callable[[S], ServiceApp],
    settings_cls: type[S] = ServiceSettings,  # type: ignore[assignment]
    **defaults: Any,
) -> None:
    """Entry point of a service process: read settings once, configure logs, build the
    app from the settings (so its start-up logs are structured too), serve until
    signalled, exit 0."""
    settings = load_settings(name, settings_cls, **defaults)
    configure_logging(name, settings.log_level, settings.log_json)
    if isinstance(settings, RegistryClientSettings):
        settings.sign_in_to_mlflow()  # the process's one MLflow identity
    app = build(settings)
    telemetry = configure_telemetry(
        name, app.version, settings.otlp_endpoint, settings.metrics_port, settings.host
    )
    try:
        with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
            code = runner.run(serve(app, settings))
    finally:
        telemetry.shutdown()
    sys.exit(code)
