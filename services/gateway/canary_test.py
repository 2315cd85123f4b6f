"""Champion/challenger routing end to end: MLflow aliases (read by the gateway as its own
read-only MLflow user), the inference service serving both versions, the gateway
splitting, shadowing and rolling a failing canary back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
import tritonclient.grpc as triton
from mlflow import MlflowClient

from gateway.testing import SYNTHETIC_SIGNATURE, synthetic_row
from inference.repository import ModelRepository
from inference.testing import broken_model, publish, spec, tree_model
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.registry.access import ADMIN, Credentials, provision, signed_in
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.auth import hash_token
from wavepod.runtime.testing.process import service_process
from wavepod.testing.mlflow import mlflow_server

MODEL = "synthetic"
APP = (("authorization", "Bearer app-token"),)
OPS = (("authorization", "Bearer ops-token"),)
MLFLOW_ADMIN = Credentials(ADMIN, "mlflow-admin-password")


def _register(tracking_uri: str) -> None:
    """Versions 1 to 3 in the registry, 1 champion and 2 challenger (the bytes the
    inference service serves were published from the matching models)."""
    with signed_in(MLFLOW_ADMIN):
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.create_registered_model(MODEL)
        run = client.create_run(client.create_experiment("canary"))
        for _ in (1, 2, 3):
            client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run.info.run_id)
        client.set_registered_model_alias(MODEL, "champion", "1")
    _set_challenger(tracking_uri, "2")


def _set_challenger(tracking_uri: str, version: str) -> None:
    with signed_in(MLFLOW_ADMIN):
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.set_registered_model_alias(MODEL, "challenger", version)


def _wait_for_aliases(
    stub: gateway_pb2_grpc.GatewayServiceStub, versions: tuple[str, str], timeout: float = 60
) -> None:
    """Until the gateway routes by these (champion, challenger) versions."""
    deadline = time.monotonic() + timeout
    while True:
        state = stub.GetRouting(gateway_pb2.GetRoutingRequest(), metadata=OPS, timeout=10)
        if (state.champion_version, state.challenger_version) == versions:
            return
        assert time.monotonic() < deadline, f"the gateway never saw aliases {versions}: {state}"
        time.sleep(0.1)


def _predict(stub: gateway_pb2_grpc.GatewayServiceStub, key: str) -> gateway_pb2.Prediction:
    request = gateway_pb2.PredictRequest(rows=[synthetic_row()], request_id=key)
    return stub.Predict(request, metadata=APP, timeout=10).predictions[0]


def test_canary_split_shadow_and_slo_rollback(tmp_path: Path) -> None:
    repository = ModelRepository(tmp_path / "models")
    with_signature = spec(signature_json=SYNTHETIC_SIGNATURE.to_json())
    publish(repository, MODEL, 1, tree_model(seed=0), with_signature)
    publish(repository, MODEL, 2, tree_model(seed=1), with_signature, keep_serving=True)
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"{hash_token('app-token')} app predict\n{hash_token('ops-token')} ops admin\n"
    )
    audit = tmp_path / "audit.jsonl"
    log_dir = tmp_path / "prediction-log"

    gateway_password = tmp_path / "gateway-mlflow-password"
    gateway_password.write_text("gateway-mlflow-password")
    with mlflow_server(tmp_path / "mlflow", admin_password=MLFLOW_ADMIN.password) as tracking_uri:
        provision(tracking_uri, MLFLOW_ADMIN, {"gateway": gateway_password.read_text()})
        _register(tracking_uri)
        inference_env = {"WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repository.root)}
        with service_process("inference.server", "inference", inference_env) as inference:
            gateway_env = {
                "WAVEPOD_GATEWAY_INFERENCE": inference.address,
                "WAVEPOD_GATEWAY_DEFAULT_MODEL": MODEL,
                "WAVEPOD_GATEWAY_AUTH_TOKENS_FILE": str(tokens),
                "WAVEPOD_GATEWAY_MLFLOW_TRACKING_URI": tracking_uri,
                "WAVEPOD_GATEWAY_MLFLOW_USERNAME": "gateway",
                "WAVEPOD_GATEWAY_MLFLOW_PASSWORD_FILE": str(gateway_password),
                "WAVEPOD_GATEWAY_ALIASES_REFRESH_SECONDS": "0.2",
                "WAVEPOD_GATEWAY_CANARY_SHARE": "0.3",
                "WAVEPOD_GATEWAY_CANARY_MIN_CALLS": "10",
                "WAVEPOD_GATEWAY_AUDIT_LOG": str(audit),
                "WAVEPOD_GATEWAY_PREDICTION_LOG_DIR": str(log_dir),
                "WAVEPOD_GATEWAY_PREDICTION_LOG_TO_LAKE": "false",  # no ingest here
            }
            with service_process("gateway.server", "gateway", gateway_env) as gateway:
                channel = grpc.insecure_channel(gateway.address)
                stub = gateway_pb2_grpc.GatewayServiceStub(channel)

                # The gateway reads the aliases from MLflow on its own time (on a loaded
                # machine a lookup can time out and is retried): route once it knows them.
                _wait_for_aliases(stub, ("1", "2"))

                # 1. A sticky 30% of keys go to the challenger.
                first = {f"r{i}": _predict(stub, f"r{i}") for i in range(300)}
                by_route = {
                    route: {p.model_version for p in first.values() if p.route == route}
                    for route in ("champion", "canary")
                }
                assert by_route == {"champion": {"1"}, "canary": {"2"}}
                share = sum(p.route == "canary" for p in first.values()) / len(first)
                assert 0.2 < share < 0.4
                values = {p.model_version: p.value for p in first.values()}
                assert values["1"] != values["2"]  # two models really answered
                for key in list(first)[:40]:
                    assert _predict(stub, key).model_version == first[key].model_version

                # 2. Admin only, audited: shadow mode, no canary.
                shadow_on = gateway_pb2.SetRoutingRequest(canary_share=0.0, shadow=True)
                with pytest.raises(grpc.RpcError) as denied:
                    stub.SetRouting(shadow_on, metadata=APP, timeout=10)
                assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
                with pytest.raises(grpc.RpcError) as bad:
                    stub.SetRouting(
                        gateway_pb2.SetRoutingRequest(canary_share=1.5), metadata=OPS, timeout=10
                    )
                assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "canary_share" in (bad.value.details() or "")
                state = stub.SetRouting(shadow_on, metadata=OPS, timeout=10)
                assert (state.champion_version, state.challenger_version) == ("1", "2")
                assert state.shadow and state.canary_share == 0.0
                shadowed = [_predict(stub, f"s{i}") for i in range(50)]
                assert {(p.route, p.model_version) for p in shadowed} == {("champion", "1")}

                # 3. A broken challenger is published (it loads, and answers NaN): callers
                # still get answers (the champion's), and the SLO monitor rolls it back.
                stub.SetRouting(
                    gateway_pb2.SetRoutingRequest(canary_share=1.0, shadow=False),
                    metadata=OPS,
                    timeout=10,
                )
                publish(repository, MODEL, 3, broken_model(), with_signature, keep_serving=True)
                triton.InferenceServerClient(inference.address).load_model(MODEL)
                _set_challenger(tracking_uri, "3")
                # The gateway answers from its alias cache while one lookup refreshes it
                # in the background: wait until it has seen the new challenger.
                _wait_for_aliases(stub, ("1", "3"))
                after = [_predict(stub, f"f{i}") for i in range(20)]
                assert {p.model_version for p in after} == {"1"}
                assert after[0].route == "champion-after-canary-failed"
                assert after[-1].route == "champion"  # rolled back: no more canary calls
                state = stub.GetRouting(gateway_pb2.GetRoutingRequest(), metadata=OPS, timeout=10)
                assert state.challenger_version == "3"
                assert list(state.rolled_back_versions) == ["3"]
                assert state.canary_window.calls == 10 and state.canary_window.error_rate == 1.0
                channel.close()
                assert gateway.terminate(timeout=20) == 0

            entries = AuditLog(audit).entries()
            assert [(e.actor, e.action) for e in entries] == [
                ("app", "wavepod.gateway.v1.GatewayService/SetRouting"),  # refused: no admin
                ("ops", "routing.set"),
                ("ops", "routing.set"),
                ("gateway/slo-monitor", "canary.rollback"),
            ]
            assert entries[-1].target == f"{MODEL}:3"
            assert entries[-1].detail["reason"].startswith("error rate 100.0% > 5.0%")

            # Shadow records: the challenger scored every shadowed prediction, logged
            # beside the champion's record under the same prediction id.
            records = [
                json.loads(line)
                for path in log_dir.rglob("*.jsonl")
                for line in path.read_text().splitlines()
            ]
            shadow_ids = {p.prediction_id for p in shadowed}
            logged = [r for r in records if r["prediction_id"] in shadow_ids]
            assert sorted((r["route"], r["version"]) for r in logged) == sorted(
                [("champion", "1")] * 50 + [("shadow", "2")] * 50
            )

            # 4. A restart replays the audit log: the rollback and the policy hold.
            with (
                service_process("gateway.server", "gateway", gateway_env) as gateway,
                grpc.insecure_channel(gateway.address) as channel,
            ):
                stub = gateway_pb2_grpc.GatewayServiceStub(channel)
                state = stub.GetRouting(
                    gateway_pb2.GetRoutingRequest(model=MODEL), metadata=OPS, timeout=10
                )
                assert list(state.rolled_back_versions) == ["3"]
                assert state.canary_share == 1.0 and not state.shadow
                assert _predict(stub, "after-restart").route == "champion"
