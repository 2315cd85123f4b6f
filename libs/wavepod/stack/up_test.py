"""The README's main command, end to end: `up` serving while the `wavepod` CLI drives it
(status, ingest, features, predict, feedback, train, promote, rollback) with the token the
stack wrote, a caller without one refused, then stopped with Ctrl-C, then `up --once` on
the same state directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import polars as pl
import pytest
from typer.testing import CliRunner

from wavepod.cli.endpoints import mlflow_password_file
from wavepod.cli.main import app as wavepod
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc

ARGS = ["--patients", "600", "--trials", "3"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "COLUMNS": "200"}


def _command(state: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wavepod.stack.up", "--state", str(state), *ARGS, *extra]


def _cli(state: Path, *args: str) -> str:
    result = CliRunner().invoke(wavepod, ["--state", str(state), *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_the_stack_runs_the_flywheel_and_the_cli_drives_it(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(_command(state), env=_env(), stdout=out, stderr=out, text=True)
    try:
        deadline = time.monotonic() + 900
        while not (state / "summary.json").exists():
            assert first.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(1)
        summary = json.loads((state / "summary.json").read_text())
        # Predictions for simulated entities, through the gateway, beat next fill = last
        # fill + days supply on the most recent labelled rows.
        print(summary)
        assert summary["model_mae"] < summary["baseline_mae"]
        assert summary["gate_passed"] and summary["champion"] == summary["version"]
        v1 = int(summary["version"])
        _drive_with_the_cli(state, v1)
        _refused_without_a_token(state)
    finally:
        first.send_signal(signal.SIGINT)  # Ctrl-C
        code = first.wait(timeout=120)
    output = log.read_text()
    assert code == 0, output[-4000:]
    assert "example predictions" in output and "gateway" in output

    # A second start reuses the state: the same data, nothing landed twice, a new version.
    second = subprocess.run(
        _command(state, "--once"), env=_env(), capture_output=True, text=True, timeout=900
    )
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "patients 0, prescriptions 0, fills 0" in second.stdout
    again = json.loads((state / "summary.json").read_text())
    assert int(again["version"]) == v1 + 2  # one more came from `wavepod train`
    assert again["model_mae"] == summary["model_mae"]  # same data + seed: same model
    # As good as the champion (a gain of 0 meets the default gate): promoted.
    assert again["gate_passed"] and again["champion"] == again["version"]


def _refused_without_a_token(state: Path) -> None:
    """Every service checks tokens, as under Compose; the CLI found the stack's above."""
    addresses = json.loads((state / "endpoints.json").read_text())
    assert (state / "operator.token").stat().st_mode & 0o777 == 0o600
    gateway, ingest = (grpc.insecure_channel(addresses[s]) for s in ("gateway", "ingest"))
    with gateway, pytest.raises(grpc.RpcError) as anonymous:
        gateway_pb2_grpc.GatewayServiceStub(gateway).Predict(
            gateway_pb2.PredictRequest(entity_ids=["x"]), timeout=10
        )
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with ingest, pytest.raises(grpc.RpcError) as anonymous:
        ingest_pb2_grpc.IngestServiceStub(ingest).ListDatasets(
            ingest_pb2.ListDatasetsRequest(), timeout=10
        )
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # MLflow too: only its users (the services', the operator's read-only one) get in.
    for user in ("admin", "trainer", "evaluator", "inference", "gateway", "operator"):
        assert mlflow_password_file(state, user).stat().st_mode & 0o777 == 0o600
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            f"{addresses['mlflow']}/api/2.0/mlflow/experiments/search", timeout=10
        )
    assert refused.value.code == 401


def _drive_with_the_cli(state: Path, v1: int) -> None:
    status = _cli(state, "status")
    assert status.count("SERVING") == 6, status
    assert f"champion -> {v1}" in status, status
    # The champion's health in production, read from the stack's lake (the prediction log
    # ships every few seconds, so it may not be there yet).
    assert f"refill:{v1}" in status or "no prediction log in the lake yet" in status, status

    assert "fills" in _cli(state, "ingest", "datasets")
    lineage = _cli(state, "ingest", "lineage", "prescriptions")
    batch = next(line for line in lineage.splitlines() if "committed" in line)
    source_id = batch.split("│")[4].strip()
    # Running a landed source again lands nothing twice.
    rerun = _cli(state, "ingest", "run", source_id)
    assert "prescriptions" in rerun and "True" in rerun, rerun  # a duplicate
    assert "refill:1" in _cli(state, "features", "list")
    assert "partitions written" in _cli(state, "features", "materialize", "refill:1")

    rx = pl.read_csv(state / "customer" / "fills.csv", infer_schema=False)["rx_id"][-1]
    online = _cli(state, "features", "get", "refill:1", rx, "--feature=days_supply")
    assert rx in online and "days_supply" in online, online
    predicted = _cli(state, "predict", rx)
    row = next(line for line in predicted.splitlines() if rx in line)
    prediction_id = row.split("│")[-2].strip()  # the table's last column
    assert "champion" in row and str(v1) in row, predicted
    assert "recorded" in _cli(state, "feedback", prediction_id, "30")

    trained = _cli(
        state,
        "train",
        "start",
        "--model-name=refill",
        "--feature-set=refill:1",
        "--label=days_to_next_fill",
        "--baseline-feature=days_supply",
        "--trials=3",
    )
    assert "succeeded" in trained, trained
    v2 = v1 + 1
    promoted = _cli(state, "promote", "refill", str(v2))
    assert f"champion: refill version {v2} (was {v1})" in promoted, promoted
    assert f"champion -> {v2}" in _cli(state, "status")
    rolled_back = _cli(state, "rollback", "refill")
    assert f"champion: refill version {v1} (was {v2})" in rolled_back, rolled_back
    # Who did all that, from the services' audit logs.
    ingest_log = _cli(state, "audit", "ingest", "--last", "100")
    assert "operator" in ingest_log and "RunIngest" in ingest_log, ingest_log
    evaluator_log = _cli(state, "audit", "evaluator")
    assert "model.promote" in evaluator_log and "model.rollback" in evaluator_log, evaluator_log
