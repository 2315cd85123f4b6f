"""The model plane end to end, every part real and in its own process: simulated lake ->
feature service -> trainer -> MLflow server -> inference service -> tritonclient."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import mlflow.pyfunc
import numpy as np
import polars as pl
import pytest
import tritonclient.grpc as triton
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mlflow import MlflowClient
from typer.testing import CliRunner

from trainer.testing import GIT_SHA, model_plane
from wavepod.cli.main import app as wavepod
from wavepod.common.v1 import refs_pb2
from wavepod.feature.v1 import feature_pb2
from wavepod.inference.v1 import inference_pb2, inference_pb2_grpc
from wavepod.signature import TRITON_CONFIG_PARAMETER, ModelSignature
from wavepod.signature.frames import encode_frame
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc

MODEL = "refill-e2e"
LABEL = "days_to_next_fill"
TRIALS = 6


RunAndEvents = tuple[trainer_pb2.Run, list[trainer_pb2.RunEvent]]


@dataclass(frozen=True)
class Stack:
    mlflow: str
    trainer: str
    inference: str
    state: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("model-plane")
    with model_plane(state) as plane:
        yield Stack(plane.mlflow, plane.trainer.address, plane.inference.address, state)


def _spec(**changes: object) -> trainer_pb2.RunSpec:
    spec = trainer_pb2.RunSpec(
        model_name=MODEL,
        feature_set=feature_pb2.FeatureSetRef(name="refill", version="1"),
        label_column=LABEL,
        budget=trainer_pb2.SearchBudget(max_trials=TRIALS, max_seconds=300),
        seed=7,
        baseline_feature="days_supply",
    )
    for key, value in changes.items():
        if hasattr(value, "DESCRIPTOR"):  # a message field
            getattr(spec, key).CopyFrom(value)
        else:
            setattr(spec, key, value)
    return spec


def _run(
    stack: Stack, spec: trainer_pb2.RunSpec
) -> tuple[trainer_pb2.Run, list[trainer_pb2.RunEvent]]:
    with grpc.insecure_channel(stack.trainer) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        started = stub.StartRun(trainer_pb2.StartRunRequest(spec=spec), timeout=60)
        assert started.state in (trainer_pb2.RUN_STATE_PENDING, trainer_pb2.RUN_STATE_RUNNING)
        events = list(
            stub.WatchRun(trainer_pb2.WatchRunRequest(run_id=started.run_id), timeout=600)
        )
        return stub.GetRun(trainer_pb2.GetRunRequest(run_id=started.run_id), timeout=30), events


@pytest.fixture(scope="module")
def first_run(stack: Stack) -> RunAndEvents:
    return _run(stack, _spec())


def test_a_run_registers_a_verified_model_that_beats_the_baseline(
    stack: Stack, first_run: RunAndEvents
) -> None:
    run, events = first_run
    assert run.state == trainer_pb2.RUN_STATE_SUCCEEDED, run.error
    phases = [e.progress.phase for e in events]
    for phase in ("training_set", "baseline", "search", "export", "artifacts", "register"):
        assert phase in phases
    assert phases[-1] == "succeeded" and events[-1].state == trainer_pb2.RUN_STATE_SUCCEEDED
    trials = [e for e in events if e.progress.phase == "search" and e.trial]
    assert [e.trial for e in trials] == list(range(1, TRIALS + 1))
    assert all(e.trials_total == TRIALS for e in trials)
    assert [e.best_metric for e in trials] == sorted((e.best_metric for e in trials), reverse=True)

    m = run.metrics
    print(
        f"holdout MAE {m['holdout_mae']:.3f} vs baseline {m['baseline_holdout_mae']:.3f}"
        f" ({m['mae_improvement_vs_baseline']:.1%} better); RMSE {m['holdout_rmse']:.3f}"
        f" vs {m['baseline_holdout_rmse']:.3f}; parity {m['onnx_parity_max_abs_diff']:.2g}"
    )
    metrics = m
    assert metrics["holdout_mae"] < metrics["baseline_holdout_mae"]
    assert metrics["holdout_rmse"] < metrics["baseline_holdout_rmse"]
    assert metrics["onnx_parity_max_abs_diff"] <= 1e-4

    client = MlflowClient(stack.mlflow)
    version = client.get_model_version(MODEL, run.registered_model.version)
    tags = version.tags
    uri = tags["wavepod.training_set.uri"]
    assert tags["wavepod.training_set.sha256"] == hashlib.sha256(Path(uri).read_bytes()).hexdigest()
    assert tags["wavepod.feature_set"] == "refill:1"
    assert len(tags["wavepod.feature_set.definition_hash"]) == 64
    assert tags["wavepod.git_sha"] == GIT_SHA
    assert version.run_id == run.mlflow_run_id
    # Promotion is the evaluator's: the trainer sets no alias.
    assert client.get_registered_model(MODEL).aliases == {}

    mlflow_run = client.get_run(run.mlflow_run_id)
    assert mlflow_run.data.params["env.lightgbm"] and mlflow_run.data.params["seed"] == "7"
    assert mlflow_run.data.tags["mlflow.source.git.commit"] == GIT_SHA
    history = client.get_metric_history(run.mlflow_run_id, "trial_valid_mae")
    assert sorted(m.step for m in history) == list(range(TRIALS))
    artifacts = {a.path for a in client.list_artifacts(run.mlflow_run_id)}
    artifacts |= {a.path for a in client.list_artifacts(run.mlflow_run_id, "plots")}
    artifacts |= {a.path for a in client.list_artifacts(run.mlflow_run_id, "model")}
    for expected in (
        "model/model.onnx",
        "model/MLmodel",
        "model_card.md",
        "report.html",
        "signature.json",
        "trials.json",
        "plots/residuals.png",
        "plots/feature_importance.png",
    ):
        assert expected in artifacts
    signature = ModelSignature.from_json(
        Path(
            client.download_artifacts(run.mlflow_run_id, "signature.json", str(stack.state))
        ).read_text()
    )
    days_supply = next(f for f in signature.features if f.name == "days_supply")
    # Ranges come from the training rows (the simulator's supplies are 28 to 90 days).
    assert days_supply.minimum is not None and days_supply.maximum is not None
    assert 28 <= days_supply.minimum < days_supply.maximum <= 90 and not days_supply.nullable
    assert next(f for f in signature.features if f.name == "channel").categories == (
        "mail",
        "retail",
    )


def test_same_data_and_seed_give_the_same_metrics(stack: Stack, first_run: RunAndEvents) -> None:
    first, _ = first_run
    tags = MlflowClient(stack.mlflow).get_run(first.mlflow_run_id).data.tags
    reuse = refs_pb2.DatasetRef(
        uri=tags["wavepod.training_set.uri"], content_hash=tags["wavepod.training_set.sha256"]
    )
    again, _ = _run(stack, _spec(training_set=reuse))
    assert again.state == trainer_pb2.RUN_STATE_SUCCEEDED, again.error
    for key in ("holdout_mae", "holdout_rmse", "valid_mae", "baseline_holdout_mae"):
        assert again.metrics[key] == first.metrics[key], key
    assert again.registered_model.version != first.registered_model.version


def test_a_registered_version_publishes_and_serves_what_mlflow_serves(
    stack: Stack, first_run: RunAndEvents
) -> None:
    run, _ = first_run
    client = MlflowClient(stack.mlflow)
    client.set_registered_model_alias(MODEL, "champion", run.registered_model.version)
    with grpc.insecure_channel(stack.inference) as channel:
        admin = inference_pb2_grpc.InferenceAdminServiceStub(channel)
        published = admin.PublishModel(
            inference_pb2.PublishModelRequest(
                model=refs_pb2.ModelRef(name=MODEL, alias="champion")
            ),
            timeout=60,
        )
        with pytest.raises(grpc.RpcError) as missing:
            admin.PublishModel(
                inference_pb2.PublishModelRequest(
                    model=refs_pb2.ModelRef(name=MODEL, version="99")
                ),
                timeout=60,
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    model_file = Path(published.repository_path) / run.registered_model.version / "model.onnx"
    assert published.sha256 == hashlib.sha256(model_file.read_bytes()).hexdigest()

    triton_client = triton.InferenceServerClient(url=stack.inference)
    config = triton_client.get_model_config(MODEL).config
    signature = ModelSignature.from_json(config.parameters[TRITON_CONFIG_PARAMETER].string_value)
    uri = client.get_model_version(MODEL, run.registered_model.version).tags[
        "wavepod.training_set.uri"
    ]
    rows = encode_frame(signature, pl.read_parquet(uri).tail(100))
    tensor = triton.InferInput(signature.input_name, list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    result = triton_client.infer(MODEL, [tensor])
    assert result.get_response().model_version == run.registered_model.version
    served = result.as_numpy(signature.output_name).reshape(-1)
    mlflow.set_tracking_uri(stack.mlflow)
    by_mlflow = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict(
        {signature.input_name: rows}
    )
    # Same file, same runtime; only float32 summation order (threads) may differ.
    expected = np.asarray(by_mlflow[signature.output_name]).reshape(-1)
    np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-4)
    triton_client.close()


def _versions(stack: Stack) -> int:
    return len(MlflowClient(stack.mlflow).search_model_versions(f"name='{MODEL}'"))


def test_bad_runs_fail_clearly_and_register_nothing(
    stack: Stack, first_run: RunAndEvents, tmp_path: Path
) -> None:
    before = _versions(stack)
    with grpc.insecure_channel(stack.trainer) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as unknown:
            stub.StartRun(
                trainer_pb2.StartRunRequest(
                    spec=_spec(feature_set=feature_pb2.FeatureSetRef(name="nope", version="1"))
                ),
                timeout=30,
            )
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        assert "nope:1" in (unknown.value.details() or "")

        zero = _spec(budget=trainer_pb2.SearchBudget(max_trials=0, max_seconds=0))
        with pytest.raises(grpc.RpcError) as invalid:
            stub.StartRun(trainer_pb2.StartRunRequest(spec=zero), timeout=30)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(invalid.value)
        assert status is not None
        request = error_details_pb2.BadRequest()
        status.details[0].Unpack(request)
        assert {v.field for v in request.field_violations} == {
            "spec.budget.max_trials",
            "spec.budget.max_seconds",
        }

    tiny = tmp_path / "tiny.parquet"
    first, _ = first_run
    uri = (
        MlflowClient(stack.mlflow)
        .get_run(first.mlflow_run_id)
        .data.tags["wavepod.training_set.uri"]
    )
    pl.read_parquet(uri).head(50).write_parquet(tiny)
    digest = hashlib.sha256(tiny.read_bytes()).hexdigest()
    too_small, events = _run(
        stack, _spec(training_set=refs_pb2.DatasetRef(uri=str(tiny), content_hash=digest))
    )
    assert too_small.state == trainer_pb2.RUN_STATE_FAILED
    assert "needs at least 200" in too_small.error
    assert events[-1].progress.phase == "failed" and "at least 200" in events[-1].progress.message

    changed, _ = _run(
        stack, _spec(training_set=refs_pb2.DatasetRef(uri=str(tiny), content_hash="0" * 64))
    )
    assert changed.state == trainer_pb2.RUN_STATE_FAILED and "changed since" in changed.error
    assert _versions(stack) == before

    with grpc.insecure_channel(stack.trainer) as channel:
        listed = trainer_pb2_grpc.TrainerServiceStub(channel).ListRuns(
            trainer_pb2.ListRunsRequest(model_name=MODEL), timeout=30
        )
    states = {r.run_id: r.state for r in listed.runs}
    assert states[too_small.run_id] == trainer_pb2.RUN_STATE_FAILED
    assert states[first.run_id] == trainer_pb2.RUN_STATE_SUCCEEDED


def test_the_cli_starts_a_run_and_renders_its_progress(stack: Stack) -> None:
    runner = CliRunner(env={"COLUMNS": "200", "WAVEPOD_TRAINER_ADDRESS": stack.trainer})
    result = runner.invoke(
        wavepod,
        [
            "train",
            "start",
            "--model-name",
            "refill-cli",
            "--feature-set",
            "refill:1",
            "--label",
            LABEL,
            "--baseline-feature",
            "days_supply",
            "--trials",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "started run" in result.output and "succeeded" in result.output
    assert "2/2 best valid MAE" in result.output and "refill-cli" in result.output

    listed = runner.invoke(wavepod, ["train", "list", "--model-name", "refill-cli"])
    assert listed.exit_code == 0 and "succeeded" in listed.output
    unknown = runner.invoke(wavepod, ["train", "watch", "no-such-run"])
    assert unknown.exit_code == 1 and "NOT_FOUND" in unknown.output
