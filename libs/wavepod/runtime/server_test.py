from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from wavepod.runtime.audit import AuditLog
from wavepod.runtime.auth import hash_token
from wavepod.runtime.channels import connect
from wavepod.runtime.server import ServiceApp, start_server
from wavepod.runtime.settings import ServiceSettings
from wavepod.runtime.status import FieldViolation, field_violations
from wavepod.runtime.testing import probe_pb2, probe_pb2_grpc
from wavepod.runtime.testing.probe import probe_app
from wavepod.runtime.testing.process import health_status, service_process

T = TypeVar("T")
SERVING = health_pb2.HealthCheckResponse.SERVING


def with_server(
    test: Callable[[str], Awaitable[T]], app: ServiceApp | None = None, **settings: object
) -> T:
    """Runs `test(address)` against an in-process server on a fresh event loop, then
    stops it as SIGTERM does."""

    async def main() -> T:
        running = await start_server(
            app or probe_app(), ServiceSettings.model_validate({"port": 0, **settings})
        )
        try:
            return await test(running.address)
        finally:
            await running.stop()

    return asyncio.run(main())


def test_health_serving_and_reflection_lists_services() -> None:
    async def check(address: str) -> tuple[int, list[str]]:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="wavepod.runtime.testing.ProbeService")
            )
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            names = [s.name async for r in stream for s in r.list_services_response.service]
            return reply.status, names

    status, names = with_server(check)
    assert status == SERVING
    assert "wavepod.runtime.testing.ProbeService" in names
    assert "grpc.health.v1.Health" in names


def test_not_ready_reports_not_serving() -> None:
    async def never_ready() -> bool:
        return False

    app = ServiceApp(name="probe", registrations=probe_app().registrations, readiness=never_ready)

    async def check(address: str) -> int:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            return reply.status

    assert with_server(check, app) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_uncaught_error_is_internal_with_logged_error_id(caplog: pytest.LogCaptureFixture) -> None:
    async def call(address: str) -> grpc.aio.AioRpcError:
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await probe_pb2_grpc.ProbeServiceStub(channel).Echo(
                    probe_pb2.ProbeRequest(behaviour="raise")
                )
            return err.value

    with caplog.at_level(logging.ERROR):
        error = with_server(call)
    assert error.code() == grpc.StatusCode.INTERNAL
    details = error.details() or ""
    assert "secret internal detail" not in details and "Traceback" not in details
    match = re.search(r"error id ([0-9a-f]{16})", details)
    assert match, details
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == match.group(1)]
    assert logged and logged[0].exc_info is not None


def test_domain_errors_map_to_status_codes_with_field_details() -> None:
    async def call(address: str) -> grpc.aio.AioRpcError:
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await probe_pb2_grpc.ProbeServiceStub(channel).Echo(
                    probe_pb2.ProbeRequest(behaviour="invalid")
                )
            return err.value

    error = with_server(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [FieldViolation("text", "must name a known probe")]


def test_error_in_the_middle_of_a_stream_is_internal() -> None:
    async def call(address: str) -> tuple[list[str], grpc.StatusCode]:
        async with grpc.aio.insecure_channel(address) as channel:
            got: list[str] = []
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for reply in probe_pb2_grpc.ProbeServiceStub(channel).Count(
                    probe_pb2.ProbeRequest(text="n", behaviour="raise_midstream")
                ):
                    got.append(reply.text)
            return got, err.value.code()

    got, code = with_server(call)
    assert got == ["n0"]
    assert code == grpc.StatusCode.INTERNAL


def test_auth_maps_bearer_tokens_to_roles(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"# sha256(token) principal roles\n"
        f"{hash_token('predict-token')} app-1 predict\n"
        f"{hash_token('admin-token')} ops admin,predict\n"
    )

    async def calls(address: str) -> dict[str, object]:
        out: dict[str, object] = {}
        async with grpc.aio.insecure_channel(address) as channel:
            stub = probe_pb2_grpc.ProbeServiceStub(channel)

            async def code_of(call: Awaitable[object]) -> grpc.StatusCode:
                try:
                    await call
                except grpc.aio.AioRpcError as e:
                    return e.code()
                return grpc.StatusCode.OK

            req = probe_pb2.ProbeRequest(text="hi")
            out["none"] = await code_of(stub.Echo(req))
            out["wrong"] = await code_of(
                stub.Echo(req, metadata=[("authorization", "Bearer nope")])
            )
            out["echo"] = await stub.Echo(req, metadata=[("authorization", "Bearer predict-token")])

            async def count(token: str) -> list[str]:
                md = [("authorization", f"Bearer {token}")]
                return [r.text async for r in stub.Count(req, metadata=md)]

            out["count_denied"] = await code_of(count("predict-token"))
            out["count_admin"] = await count("admin-token")
            out["health"] = (
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            ).status
        return out

    out = with_server(calls, auth_tokens_file=tokens)
    assert out["none"] == grpc.StatusCode.UNAUTHENTICATED
    assert out["wrong"] == grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(out["echo"], probe_pb2.ProbeReply) and out["echo"].principal == "app-1"
    assert out["count_denied"] == grpc.StatusCode.PERMISSION_DENIED
    assert out["count_admin"] == ["hi0", "hi1", "hi2"]
    assert out["health"] == SERVING


def test_tokens_added_and_revoked_take_effect_without_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = tmp_path / "tokens"
    old, new = "old-secret-token", "rotated-secret-token"

    def write(*lines: str) -> None:  # as an operator or a secret mount would: atomically
        staged = tmp_path / "tokens.new"
        staged.write_text("".join(f"{line}\n" for line in lines))
        staged.replace(tokens)

    write(f"{hash_token(old)} app-1 predict")

    async def calls(address: str) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = probe_pb2_grpc.ProbeServiceStub(channel)

            async def code(token: str) -> grpc.StatusCode:
                md = [("authorization", f"Bearer {token}")]
                try:
                    await stub.Echo(probe_pb2.ProbeRequest(text="hi"), metadata=md)
                except grpc.aio.AioRpcError as e:
                    return e.code()
                return grpc.StatusCode.OK

            async def becomes(token: str, expected: grpc.StatusCode) -> grpc.StatusCode:
                deadline = time.monotonic() + 5
                while (found := await code(token)) != expected and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                return found

            OK, REFUSED = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED
            assert await code(old) == OK and await code(new) == REFUSED
            # Rotation: a second token for the same caller; both work while clients move.
            write(f"{hash_token(old)} app-1 predict", f"{hash_token(new)} app-1 predict")
            assert await becomes(new, OK) == OK and await code(old) == OK
            # Revocation: the old token is refused, with no restart.
            write(f"{hash_token(new)} app-1 predict")
            assert await becomes(old, REFUSED) == REFUSED and await code(new) == OK
            # A broken edit is refused loudly; the last good file stays in force.
            write("not a token line")
            await asyncio.sleep(1.5)
            assert await code(new) == OK and await code(old) == REFUSED

    with_server(calls, auth_tokens_file=tokens)
    assert "tokens file not reloaded" in caplog.text and "4 fields found" in caplog.text
    assert "secret-token" not in caplog.text


def test_audit_records_refused_admin_calls_naming_the_caller_never_the_token(
    tmp_path: Path,
) -> None:
    tokens, audit = tmp_path / "tokens", tmp_path / "audit.jsonl"
    tokens.write_text(
        f"{hash_token('predict-secret')} app-1 predict\n{hash_token('admin-secret')} ops admin\n"
    )
    count, echo = (
        "/wavepod.runtime.testing.ProbeService/Count",
        "/wavepod.runtime.testing.ProbeService/Echo",
    )
    app = replace(probe_app(), self_audited_methods=frozenset({count}))

    async def calls(address: str) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = probe_pb2_grpc.ProbeServiceStub(channel)
            req = probe_pb2.ProbeRequest(text="hi")
            for token in (None, "stolen-secret", "predict-secret", "admin-secret"):
                md = [("authorization", f"Bearer {token}")] if token else None
                with contextlib.suppress(grpc.aio.AioRpcError):
                    [r async for r in stub.Count(req, metadata=md)]
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await stub.Echo(req, metadata=md)  # not an admin RPC: never recorded

    with_server(calls, app, auth_tokens_file=tokens, audit_log=audit)
    entries = [(e.actor, f"/{e.action}", e.detail["code"]) for e in AuditLog(audit).entries()]
    # Count records its own successes (as the gateway's routing does): only refusals here.
    assert entries == [
        ("anonymous", count, "UNAUTHENTICATED"),
        ("unknown token", count, "UNAUTHENTICATED"),
        ("app-1", count, "PERMISSION_DENIED"),
    ]
    assert echo not in audit.read_text() and "secret" not in audit.read_text()


def test_a_flood_of_refused_calls_writes_one_entry_and_a_count_per_window(
    tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{hash_token('predict-secret')} app-1 predict\n")
    count = "/wavepod.runtime.testing.ProbeService/Count"
    app = replace(probe_app(), self_audited_methods=frozenset({count}))

    async def calls(address: str) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = probe_pb2_grpc.ProbeServiceStub(channel)

            async def refused(n: int, token: str | None = None) -> None:
                md = [("authorization", f"Bearer {token}")] if token else None
                for _ in range(n):
                    with pytest.raises(grpc.aio.AioRpcError):
                        [r async for r in stub.Count(probe_pb2.ProbeRequest(), metadata=md)]

            await refused(40)
            await refused(3, "predict-secret")  # another caller: a window of its own
            await asyncio.sleep(3.0)  # both windows close: their counts are written
            await refused(5)  # a new window: its first refusal is written at once

    with_server(
        calls, app, auth_tokens_file=tokens, audit_log=audit, audit_refusal_window_seconds=2.0
    )
    entries = [
        (e.actor, e.detail["code"], e.detail.get("repeated")) for e in AuditLog(audit).entries()
    ]
    assert entries == [
        ("anonymous", "UNAUTHENTICATED", None),
        ("app-1", "PERMISSION_DENIED", None),
        ("anonymous", "UNAUTHENTICATED", 39),
        ("app-1", "PERMISSION_DENIED", 2),
        ("anonymous", "UNAUTHENTICATED", None),
        ("anonymous", "UNAUTHENTICATED", 4),  # written when the server stopped
    ]


def test_outgoing_calls_get_a_default_deadline() -> None:
    async def call(address: str) -> grpc.StatusCode:
        channel = connect(
            address, ServiceSettings.model_validate({"outgoing_timeout_seconds": 0.2})
        )
        async with channel:
            try:
                await probe_pb2_grpc.ProbeServiceStub(channel).Echo(
                    probe_pb2.ProbeRequest(behaviour="sleep", sleep_seconds=3)
                )
            except grpc.aio.AioRpcError as e:
                return e.code()
        return grpc.StatusCode.OK

    started = time.monotonic()
    assert with_server(call) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_sigterm_drains_in_flight_calls_flushes_and_exits_zero(
    tmp_path: Path, event_loop: str
) -> None:
    marker = tmp_path / "flushed"
    env = {
        "PROBE_FLUSH_MARKER": str(marker),
        "WAVEPOD_PROBE_DRAIN_SECONDS": "5",
        "WAVEPOD_PROBE_EVENT_LOOP": event_loop,
    }
    with service_process("wavepod.runtime.testing.probe", "probe", env) as proc:
        result: dict[str, object] = {}

        def slow_call() -> None:
            with grpc.insecure_channel(proc.address) as channel:
                try:
                    result["reply"] = probe_pb2_grpc.ProbeServiceStub(channel).Echo(
                        probe_pb2.ProbeRequest(text="done", behaviour="sleep", sleep_seconds=1.5),
                        timeout=10,
                    )
                except grpc.RpcError as e:  # pragma: no cover - reported by the assert below
                    result["error"] = e

        caller = threading.Thread(target=slow_call)
        caller.start()
        time.sleep(0.5)  # the call is in flight
        started = time.monotonic()
        code = proc.terminate(timeout=10)
        elapsed = time.monotonic() - started
        caller.join()
        assert code == 0, proc.logs()
        assert elapsed < 5, "exit must come within the drain deadline"
        assert getattr(result.get("reply"), "text", None) == "done", result
        assert marker.read_text() == "flushed"
        assert health_status(proc.address) is None  # no longer accepting
        lines = [json.loads(line) for line in proc.logs().splitlines() if line.startswith("{")]
        assert any(line["msg"] == "draining" for line in lines)
        assert all(line["service"] == "probe" for line in lines)
        serving = next(line for line in lines if line["msg"] == "serving")
        assert serving["event_loop"] == event_loop


def test_logs_carry_trace_ids_of_the_rpc() -> None:
    with service_process("wavepod.runtime.testing.probe", "probe") as proc:
        with grpc.insecure_channel(proc.address) as channel, pytest.raises(grpc.RpcError) as err:
            probe_pb2_grpc.ProbeServiceStub(channel).Echo(
                probe_pb2.ProbeRequest(behaviour="raise"), timeout=5
            )
        error_id = re.search(r"error id (\w+)", err.value.details() or "")
        assert proc.terminate(timeout=15) == 0
    assert error_id
    lines = [json.loads(line) for line in proc.logs().splitlines() if line.startswith("{")]
    errors = [line for line in lines if line.get("error_id") == error_id.group(1)]
    assert errors and re.fullmatch(r"[0-9a-f]{32}", errors[0]["trace_id"])
    assert "secret internal detail" in errors[0]["exc"]
