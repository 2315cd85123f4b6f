"""The gateway when inference dies under load: fast UNAVAILABLE, then recovery."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc

from gateway.testing import SYNTHETIC_SIGNATURE, synthetic_row
from inference.repository import ModelRepository
from inference.testing import publish, spec, tree_model
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime.testing.process import free_port, service_process


def _request() -> gateway_pb2.PredictRequest:
    return gateway_pb2.PredictRequest(rows=[synthetic_row()])


def test_inference_down_mid_load_is_unavailable_fast_and_recovers(tmp_path: Path) -> None:
    repository = ModelRepository(tmp_path / "models")
    publish(
        repository, "synthetic", 1, tree_model(), spec(signature_json=SYNTHETIC_SIGNATURE.to_json())
    )
    port = free_port()
    inference_env = {"WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repository.root)}
    gateway_env = {
        "WAVEPOD_GATEWAY_INFERENCE": f"127.0.0.1:{port}",
        "WAVEPOD_GATEWAY_DEFAULT_MODEL": "synthetic",
        "WAVEPOD_GATEWAY_PREDICTION_LOG_DIR": str(tmp_path / "log"),
        "WAVEPOD_GATEWAY_BREAKER_OPEN_SECONDS": "0.5",
        "WAVEPOD_GATEWAY_PREDICTION_LOG_TO_LAKE": "false",  # no ingest here
        "WAVEPOD_GATEWAY_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }
    outcomes: list[tuple[float, grpc.StatusCode, float]] = []  # (when, code, seconds)
    stop = threading.Event()

    def load(address: str) -> None:
        stub = gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(address))
        while not stop.is_set():
            started = time.monotonic()
            try:
                stub.Predict(_request(), timeout=5)
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
            outcomes.append((started, code, time.monotonic() - started))

    with service_process("gateway.server", "gateway", gateway_env) as gateway:
        with service_process(
            "inference.server", "inference", inference_env, port=port
        ) as inference:
            workers = [threading.Thread(target=load, args=(gateway.address,)) for _ in range(4)]
            for w in workers:
                w.start()
            time.sleep(1.0)
            inference.process.send_signal(signal.SIGKILL)  # no drain: a crash
            inference.process.wait(timeout=10)
            killed = time.monotonic()
            time.sleep(2.0)
        # Calls may succeed as soon as the new process serves, before the fixture sees it.
        restarting = time.monotonic()
        with service_process("inference.server", "inference", inference_env, port=port):
            restarted = time.monotonic()
            time.sleep(2.5)
            stop.set()
            for w in workers:
                w.join(timeout=10)

    before = [o for o in outcomes if o[0] < killed - 0.1]
    down = [o for o in outcomes if killed + 0.1 < o[0] < restarting]
    after = [o for o in outcomes if o[0] > restarted + 1.5]
    assert before and all(code == grpc.StatusCode.OK for _, code, _ in before)
    # While inference is down: UNAVAILABLE (never UNKNOWN or INTERNAL), and fast.
    assert down and {code for _, code, _ in down} == {grpc.StatusCode.UNAVAILABLE}
    assert max(seconds for _, _, seconds in down) < 2.5
    # After the restart (and the breaker's cool-down): answers again.
    assert after and all(code == grpc.StatusCode.OK for _, code, _ in after)
