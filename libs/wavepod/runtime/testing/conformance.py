"""The checks every wavepod service process must pass (used by each service's tests).

Start the service as a real process, see SERVING on the health RPC, find every
contract service in reflection, call every RPC (a built one must not fail with
UNKNOWN or INTERNAL; an unbuilt one answers UNIMPLEMENTED naming what is missing),
then SIGTERM it and expect exit code 0 within the drain deadline.
"""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from wavepod.runtime.server import ServiceApp
from wavepod.runtime.testing.process import health_status, service_process

DRAIN_SECONDS = 3.0


def _identity(b: bytes) -> bytes:
    return b


def _call_with_empty_request(channel: grpc.Channel, method: str, client_streams: bool) -> None:
    if client_streams:
        channel.stream_unary(method, _identity, _identity)(iter([b""]), timeout=5)
    else:
        # Works for server-streaming methods too: the first message or status is read.
        channel.unary_stream(method, _identity, _identity)(b"", timeout=5).next()


def check_service_process(module: str, app: ServiceApp) -> None:
    env = {f"WAVEPOD_{app.name.upper()}_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    with service_process(module, app.name, env) as proc:
        for registration in app.registrations:
            name = registration.descriptor.full_name
            assert health_status(proc.address, name) == health_pb2.HealthCheckResponse.SERVING

        with grpc.insecure_channel(proc.address) as channel:
            listed = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
            names = {s.name for reply in listed for s in reply.list_services_response.service}
            for registration in app.registrations:
                descriptor = registration.descriptor
                assert descriptor.full_name in names
                for method in descriptor.methods:
                    path = f"/{descriptor.full_name}/{method.name}"
                    try:
                        _call_with_empty_request(channel, path, method.client_streaming)
                    except grpc.RpcError as e:
                        code, details = e.code(), e.details() or ""
                        assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (
                            path,
                            details,
                        )
                        if code == grpc.StatusCode.UNIMPLEMENTED:
                            assert f"{method.name} is not built yet: " in details, details
                    except StopIteration:
                        pass  # a server stream that ended without messages

        started = time.monotonic()
        assert proc.terminate(timeout=DRAIN_SECONDS + 10) == 0, proc.logs()
        assert time.monotonic() - started < DRAIN_SECONDS + 5
