"""wavepod's six images run together under Compose: the host-network override with
embedded backends (what a Docker daemon without a bridge or registry can run), each
healthy, the gateway reading its token secret and wired to inference with its service
token, internal services refusing callers without one and callers without the roles
of an RPC (least privilege, with the secrets make-secrets.sh writes), all stopping
cleanly on `compose stop`.

Needs a Docker daemon (DOCKER_HOST; .ci/run starts one) and the images, which Pants
builds first (runtime_package_dependencies).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from deployment.compose_support import COMPOSE_DIR, WAVEPOD, compose, run_compose
from grpc_health.v1 import health_pb2
from tritonclient.grpc import service_pb2, service_pb2_grpc

from wavepod.common.v1 import refs_pb2
from wavepod.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime.auth import hash_token
from wavepod.runtime.testing.process import free_port, health_status

TOKEN = "compose-test-token"


@dataclass(frozen=True)
class Stack:
    ports: dict[str, int]
    gateway_service_token: str  # what the gateway presents to internal services
    operator_token: str  # role admin at the internal services, printed once
    compose_args: tuple[str, ...]  # files and profile, for `compose exec`
    env: dict[str, str]


@pytest.fixture
def running() -> Iterator[Stack]:
    # The sandbox has no secrets (they are never committed): a caller token of the
    # test's own, then make-secrets.sh for the rest and for ownership.
    secrets = COMPOSE_DIR / "secrets"
    assert not secrets.exists(), "run through Pants: its sandbox holds no real secrets"
    secrets.mkdir(mode=0o700)
    ports = {s: free_port() for s in WAVEPOD}
    (secrets / "gateway_tokens").write_text(f"{hash_token(TOKEN)} compose-test predict\n")
    made = subprocess.run(
        ["bash", "make-secrets.sh"], cwd=COMPOSE_DIR, check=True, capture_output=True, text=True
    )
    operator = re.search(r"^operator token .*: (\S+)$", made.stdout, re.MULTILINE)
    assert operator is not None, made.stdout
    env = {f"{s.upper()}_PORT": str(p) for s, p in ports.items()}
    env["COMPOSE_PROJECT_NAME"] = f"wavepod-test-{os.getpid()}"
    files = ("-f", "compose.yaml", "-f", "compose.host.yaml", "--profile", "local")
    gateway_token = (secrets / "gateway_token").read_text().strip()
    stack = Stack(ports, gateway_token, operator.group(1), files, env)
    try:
        compose(*files, "up", "-d", "state-init", *WAVEPOD, env=env)
        yield stack
        compose(*files, "stop", "-t", "30", env=env)
        states = [
            json.loads(line)
            for line in compose(*files, "ps", "-a", "--format", "json", env=env).splitlines()
        ]
        exits = {s["Service"]: s["ExitCode"] for s in states}
        assert exits == {"state-init": 0, **{s: 0 for s in WAVEPOD}}, exits
    finally:
        print(run_compose(*files, "logs", "--tail", "20", env=env, check=False).stdout)
        compose(*files, "down", "-v", "-t", "5", env=env)


@pytest.mark.timeout(600)
def test_wavepod_images_run_together_under_compose(running: Stack) -> None:
    ports = running.ports
    deadline = time.monotonic() + 180
    healthy: set[str] = set()
    while healthy != set(WAVEPOD) and time.monotonic() < deadline:
        for service, port in ports.items():
            if health_status(f"127.0.0.1:{port}") == health_pb2.HealthCheckResponse.SERVING:
                healthy.add(service)
        time.sleep(1)
    assert healthy == set(WAVEPOD), f"not serving: {set(WAVEPOD) - healthy}"

    # The gateway reads its token file from a Compose secret and is wired to inference:
    # a caller without a token is refused; one with a token hears from inference that
    # no such model is served.
    request = gateway_pb2.PredictRequest(model=refs_pb2.ModelRef(name="nope"), entity_ids=["1"])
    with grpc.insecure_channel(f"127.0.0.1:{ports['gateway']}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Predict(request, metadata=_bearer(TOKEN), timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, unknown.value.details()
        assert "nope" in (unknown.value.details() or "")

    # Inside the stack too, a service answers only callers with a service token: the
    # gateway's reached inference above (its own token, from its secret); a caller
    # without one, here on the host network, is refused by inference and by ingest. And
    # each token holds only the roles its service needs (least privilege).
    gateway, operator = _bearer(running.gateway_service_token), _bearer(running.operator_token)
    with grpc.insecure_channel(f"127.0.0.1:{ports['inference']}") as channel:
        triton = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as anonymous:
            triton.ServerLive(service_pb2.ServerLiveRequest(), timeout=10)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The gateway's token reads model state but cannot change what is served.
        triton.ServerLive(service_pb2.ServerLiveRequest(), metadata=gateway, timeout=10)
        with pytest.raises(grpc.RpcError) as denied:
            triton.RepositoryModelUnload(
                service_pb2.RepositoryModelUnloadRequest(model_name="refill"),
                metadata=gateway,
                timeout=10,
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with grpc.insecure_channel(f"127.0.0.1:{ports['ingest']}") as channel:
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.RpcError) as anonymous:
            ingest.ListDatasets(ingest_pb2.ListDatasetsRequest(), timeout=10)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The gateway's token streams events but runs no source and reads no lineage;
        # the operator's does.
        for call in (
            lambda: next(ingest.RunIngest(ingest_pb2.RunIngestRequest(), metadata=gateway)),
            lambda: ingest.ListDatasets(ingest_pb2.ListDatasetsRequest(), metadata=gateway),
        ):
            with pytest.raises(grpc.RpcError) as denied:
                call()
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        ingest.ListDatasets(ingest_pb2.ListDatasetsRequest(), metadata=operator, timeout=10)
        # An admin action is audited, on the state volume, whatever its outcome.
        with pytest.raises(grpc.RpcError) as unknown:
            next(ingest.RunIngest(ingest_pb2.RunIngestRequest(source_id="nope"), metadata=operator))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, unknown.value.details()
    # A refused call's status can reach the caller just before its entry is written.
    entries: list[dict] = []
    deadline = time.monotonic() + 15
    while _ran_ingest(entries, "operator") is None and time.monotonic() < deadline:
        audit = run_compose(
            *running.compose_args,
            "exec",
            "-T",
            "ingest",
            "cat",
            "/var/lib/wavepod/audit/ingest.jsonl",
            env=running.env,
            check=False,
        ).stdout
        entries = [json.loads(line) for line in audit.splitlines()]
        time.sleep(0 if _ran_ingest(entries, "operator") else 0.5)
    assert (_ran_ingest(entries, "operator") or {}).get("detail") == {"code": "NOT_FOUND"}, entries
    # So is the attempt the gateway's token had no right to make.
    attempt = _ran_ingest(entries, "gateway") or {}
    assert attempt.get("detail") == {"code": "PERMISSION_DENIED"}, entries
    # The evaluator's promotions and rollbacks take an admin's token, not a service's.
    with grpc.insecure_channel(f"127.0.0.1:{ports['evaluator']}") as channel:
        with pytest.raises(grpc.RpcError) as anonymous:
            evaluator_pb2_grpc.EvaluatorServiceStub(channel).Rollback(
                evaluator_pb2.RollbackRequest(), timeout=10
            )
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _ran_ingest(entries: list[dict], actor: str) -> dict | None:
    """The audit entry of `actor`'s RunIngest call, if written."""
    return next(
        (e for e in entries if e["actor"] == actor and e["action"].endswith("/RunIngest")), None
    )
