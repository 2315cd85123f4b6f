"""The checks every wavepod service process must pass (used by each service's tests).

Start the service as a real process with token auth on, see SERVING on the health RPC,
find every contract service in reflection, and call every RPC three times: without a
token (UNAUTHENTICATED), as a caller without the RPC's roles (PERMISSION_DENIED: every
RPC names who may call it), and as one with them (a built RPC must not fail with UNKNOWN
or INTERNAL; an unbuilt one answers UNIMPLEMENTED naming what is missing). Each call of
an audited RPC is in the audit log with its caller and the status it ended with, and so
is each refused call of an RPC that audits its own actions. Then SIGTERM it and expect
exit code 0 within the drain deadline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from wavepod.runtime.audit import AuditLog
from wavepod.runtime.auth import hash_token
from wavepod.runtime.server import ServiceApp
from wavepod.runtime.testing.process import health_status, service_process

DRAIN_SECONDS = 3.0
# Bearer tokens of two callers: one holding every role the service names, one none.
ALLOWED, DENIED = "conformance-allowed", "conformance-denied"


def _identity(b: bytes) -> bytes:
    return b


def _call_with_empty_request(
    channel: grpc.Channel, method: str, client_streams: bool, token: str | None
) -> None:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    if client_streams:
        channel.stream_unary(method, _identity, _identity)(
            iter([b""]), timeout=5, metadata=metadata
        )
    else:
        # Works for server-streaming methods too: the first message or status is read.
        channel.unary_stream(method, _identity, _identity)(b"", timeout=5, metadata=metadata).next()


def check_service_process(module: str, app: ServiceApp) -> None:
    paths = {
        f"/{r.descriptor.full_name}/{m.name}": m.client_streaming
        for r in app.registrations
        for m in r.descriptor.methods
    }
    # Least privilege by default: every RPC names the roles that may call it.
    assert set(paths) == set(app.method_roles), sorted(set(paths) ^ set(app.method_roles))
    every_role = ",".join(sorted(set().union(*app.method_roles.values())))
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens"
        tokens.write_text(
            f"{hash_token(ALLOWED)} allowed {every_role}\n{hash_token(DENIED)} denied nobody\n"
        )
        prefix = f"WAVEPOD_{app.name.upper()}_"
        audit = Path(tmp) / "audit.jsonl"
        env = {
            f"{prefix}DRAIN_SECONDS": str(DRAIN_SECONDS),
            f"{prefix}AUTH_TOKENS_FILE": str(tokens),
            f"{prefix}AUDIT_LOG": str(audit),
        }
        with service_process(module, app.name, env) as proc:
            for registration in app.registrations:
                name = registration.descriptor.full_name
                status = health_status(proc.address, name)
                assert status == health_pb2.HealthCheckResponse.SERVING

            with grpc.insecure_channel(proc.address) as channel:
                listed = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
                )
                names = {s.name for reply in listed for s in reply.list_services_response.service}
                assert {r.descriptor.full_name for r in app.registrations} <= names
                codes = {path: _check_rpc(channel, path, cs) for path, cs in paths.items()}

            started = time.monotonic()
            assert proc.terminate(timeout=DRAIN_SECONDS + 10) == 0, proc.logs()
            assert time.monotonic() - started < DRAIN_SECONDS + 5

        # Read once the server has drained: a refused call's status can reach the caller
        # before its entry is written (a successful reply leaves only after).
        audited = {
            (f"/{e.action}", e.actor, e.detail["code"])
            for e in AuditLog(audit).entries()
            if f"/{e.action}" in paths  # not a service's own entries
        }
        refusals = {("anonymous", "UNAUTHENTICATED"), ("denied", "PERMISSION_DENIED")}
        expected = {
            (path, *entry)
            for path in app.audited_methods | app.self_audited_methods
            for entry in refusals
        } | {(path, "allowed", codes[path]) for path in app.audited_methods}
        assert audited == expected, sorted(audited ^ expected)


def _check_rpc(channel: grpc.Channel, path: str, client_streams: bool) -> str:
    """Checks one RPC; returns the status the allowed caller's call ended with."""
    refusals = [_outcome(channel, path, client_streams, token) for token in (None, DENIED)]
    assert refusals == ["UNAUTHENTICATED", "PERMISSION_DENIED"], (path, refusals)
    try:
        _call_with_empty_request(channel, path, client_streams, ALLOWED)
    except grpc.RpcError as e:
        code, details = e.code(), e.details() or ""
        assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (path, details)
        if code == grpc.StatusCode.UNIMPLEMENTED:
            assert f"{path.rsplit('/', 1)[1]} is not built yet: " in details, details
        return code.name
    except StopIteration:
        pass  # a server stream that ended without messages
    return "OK"


def _outcome(channel: grpc.Channel, path: str, client_streams: bool, token: str | None) -> str:
    try:
        _call_with_empty_request(channel, path, client_streams, token)
    except grpc.RpcError as e:
        return e.code().name
    except StopIteration:
        pass
    return "OK"
