"""Evaluate, gate, promote and roll back, all for real: two versions trained by the
trainer service, judged on their holdout, champions moved through MLflow aliases and
served by the inference service, every move in the audit log."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import polars as pl
import pytest
import tritonclient.grpc as triton
from google.protobuf.timestamp_pb2 import Timestamp
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from evaluator.evaluation import EVALUATION_ID_TAG, PREDICTION, REFERENCE_FILE, REPORTS
from evaluator.testing import land, train
from ingest.testing import ingest_env
from trainer.testing import model_plane
from wavepod.common.v1 import refs_pb2
from wavepod.evaluator.v1 import evaluator_pb2 as E
from wavepod.evaluator.v1 import evaluator_pb2_grpc
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.auth import hash_token
from wavepod.runtime.testing.process import free_port, service_process
from wavepod.runtime.testing.prometheus import scrape

MODEL = "refill-eval"
OPS = (("authorization", "Bearer ops-token"),)
CI = (("authorization", "Bearer ci-token"),)
# One-row latency on a busy 2-core CI box: judged against a loose budget here; the rule
# itself is tested in gates_test.
LOOSE_LATENCY = E.GatePolicy(latency_budget_ms=50.0)


@dataclass(frozen=True)
class Stack:
    mlflow: str
    evaluator: evaluator_pb2_grpc.EvaluatorServiceStub
    inference: str
    audit: Path
    versions: tuple[str, str]
    ingest: str
    metrics_url: str  # the evaluator's Prometheus page


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("evaluator")
    metrics_port = free_port()
    tokens = state / "tokens"
    tokens.write_text(
        f"{hash_token('ops-token')} ops admin\n{hash_token('ci-token')} ci evaluate\n"
    )
    with (
        model_plane(state) as plane,
        service_process("ingest.server", "ingest", ingest_env(state / "ingest-lake")) as ingest,
        service_process(
            "evaluator.server",
            "evaluator",
            {
                "WAVEPOD_EVALUATOR_LAKE": f"ingest://{ingest.address}",
                "WAVEPOD_EVALUATOR_TRAINER": plane.trainer.address,
                "WAVEPOD_EVALUATOR_MLFLOW_TRACKING_URI": plane.mlflow,
                "WAVEPOD_EVALUATOR_INFERENCE": plane.inference.address,
                "WAVEPOD_EVALUATOR_AUTH_TOKENS_FILE": str(tokens),
                "WAVEPOD_EVALUATOR_AUDIT_LOG": str(state / "audit.jsonl"),
                # The retrain pass judges with the service's gate: one-row latency on a
                # busy CI box gets a loose budget (the rule is tested in gates_test).
                "WAVEPOD_EVALUATOR_GATE_LATENCY_BUDGET_MS": "50",
                "WAVEPOD_EVALUATOR_METRICS_PORT": str(metrics_port),
            },
        ) as evaluator,
        grpc.insecure_channel(evaluator.address) as channel,
    ):
        versions = (
            train(plane.trainer.address, MODEL, 2, 1),
            train(plane.trainer.address, MODEL, 6, 7),
        )
        yield Stack(
            plane.mlflow,
            evaluator_pb2_grpc.EvaluatorServiceStub(channel),
            plane.inference.address,
            state / "audit.jsonl",
            versions,
            ingest.address,
            f"http://127.0.0.1:{metrics_port}/metrics",
        )


def _evaluate(stack: Stack, version: str, policy: E.GatePolicy = LOOSE_LATENCY) -> E.Evaluation:
    request = E.EvaluateRequest(
        candidate=refs_pb2.ModelRef(name=MODEL, version=version), policy=policy
    )
    return stack.evaluator.Evaluate(request, metadata=CI, timeout=120)


def _promote(
    stack: Stack, version: str, evaluation_id: str, reason: str = "better"
) -> E.PromoteResponse:
    request = E.PromoteRequest(
        model=refs_pb2.ModelRef(name=MODEL, version=version),
        evaluation_id=evaluation_id,
        reason=reason,
    )
    return stack.evaluator.Promote(request, metadata=OPS, timeout=120)


def _serving(stack: Stack) -> set[str]:
    client = triton.InferenceServerClient(stack.inference)
    index = client.get_model_repository_index()
    client.close()
    return {m.version for m in index.models if m.name == MODEL and m.state == "READY"}


def _aliases(stack: Stack) -> dict[str, str]:
    client = MlflowClient(tracking_uri=stack.mlflow, registry_uri=stack.mlflow)
    return dict(client.get_registered_model(MODEL).aliases)


def test_promotion_and_rollback_move_aliases_serve_and_audit(stack: Stack) -> None:
    first, second = stack.versions

    # The first version: no champion yet, so it is judged against the baseline.
    evaluation = _evaluate(stack, first)
    assert evaluation.reference == "baseline (days_supply)" and evaluation.rows > 100
    assert evaluation.passed, [g.detail for g in evaluation.gates if not g.passed]
    assert {g.gate for g in evaluation.gates} == {
        "min_improvement",
        "subgroup_tolerance",
        "parity",
        "latency_budget",
    }
    assert evaluation.candidate_metrics["mae"] < evaluation.champion_metrics["mae"]
    dimensions = {s.subgroup.split("=")[0] for s in evaluation.subgroups}
    assert dimensions == {"age_band", "sex", "payer", "channel"}
    assert set(evaluation.fairness_gaps) <= dimensions and evaluation.fairness_gaps
    assert 0 < evaluation.latency_p95_ms < 50
    report = stack.evaluator.Report(
        E.ReportRequest(
            model=refs_pb2.ModelRef(name=MODEL, version=first),
            evaluation_id=evaluation.evaluation_id,
        ),
        metadata=CI,
        timeout=30,
    )
    assert report.uri == evaluation.report_uri and "<img" in report.html and "Gates" in report.html
    mlflow = MlflowClient(tracking_uri=stack.mlflow, registry_uri=stack.mlflow)
    run = mlflow.get_run(mlflow.get_model_version(MODEL, first).run_id or "")
    assert run.data.metrics["evaluation.mae"] == pytest.approx(evaluation.candidate_metrics["mae"])

    # Promotion is admin-only, needs a reason, and then serves and moves the alias.
    with pytest.raises(grpc.RpcError) as denied:
        stack.evaluator.Promote(
            E.PromoteRequest(
                model=refs_pb2.ModelRef(name=MODEL, version=first),
                evaluation_id=evaluation.evaluation_id,
                reason="x",
            ),
            metadata=CI,
            timeout=30,
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as no_reason:
        _promote(stack, first, evaluation.evaluation_id, reason="")
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    promoted = _promote(stack, first, evaluation.evaluation_id)
    assert (promoted.champion.version, promoted.previous.version) == (first, "")
    assert _aliases(stack) == {"champion": first}
    assert _serving(stack) == {first}

    # The second version against that champion: a strict gate fails and blocks promotion.
    strict = _evaluate(stack, second, E.GatePolicy(min_improvement=0.5, latency_budget_ms=50.0))
    assert strict.reference == f"champion version {first}" and not strict.passed
    failed = {g.gate: g for g in strict.gates if not g.passed}
    assert "min_improvement" in failed
    assert f"vs champion version {first}" in failed["min_improvement"].detail
    assert failed["min_improvement"].threshold == 0.5
    with pytest.raises(grpc.RpcError) as blocked:
        _promote(stack, second, strict.evaluation_id)
    assert blocked.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "min_improvement" in (blocked.value.details() or "")

    # A lenient gate passes; promoting on a stale evaluation id is refused.
    lenient = _evaluate(
        stack,
        second,
        E.GatePolicy(min_improvement=-1.0, subgroup_tolerance=10.0, latency_budget_ms=50.0),
    )
    assert lenient.passed, [g.detail for g in lenient.gates if not g.passed]
    with pytest.raises(grpc.RpcError) as stale:
        _promote(stack, second, strict.evaluation_id)
    assert "latest" in (stale.value.details() or "")
    promoted = _promote(stack, second, lenient.evaluation_id)
    assert (promoted.champion.version, promoted.previous.version) == (second, first)
    assert _aliases(stack) == {"champion": second, "previous": first}
    assert _serving(stack) == {second}

    # Rollback restores the previous champion, and can itself be undone.
    rolled = stack.evaluator.Rollback(
        E.RollbackRequest(model_name=MODEL, reason="complaints from pharmacies"),
        metadata=OPS,
        timeout=120,
    )
    assert (rolled.champion.version, rolled.previous.version) == (first, second)
    assert _aliases(stack) == {"champion": first, "previous": second}
    assert _serving(stack) == {first}

    entries = AuditLog(stack.audit).entries()
    # The server records the refused attempt; the promoter records what was done.
    refused = "wavepod.evaluator.v1.EvaluatorService/Promote"
    assert [(e.actor, e.action, e.detail.get("code")) for e in entries[:1]] == [
        ("ci", refused, "PERMISSION_DENIED")
    ]
    assert [(e.actor, e.action, e.target) for e in entries[1:]] == [
        ("ops", "model.promote", f"{MODEL}:{first}"),
        ("ops", "model.promote", f"{MODEL}:{second}"),
        ("ops", "model.rollback", f"{MODEL}:{first}"),
    ]
    assert entries[-1].detail == {"reason": "complaints from pharmacies", "rolled_back": second}


def test_unknown_versions_and_missing_fields_get_clear_statuses(stack: Stack) -> None:
    with pytest.raises(grpc.RpcError) as unknown:
        _evaluate(stack, "99")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as missing:
        stack.evaluator.Evaluate(
            E.EvaluateRequest(candidate=refs_pb2.ModelRef(name=MODEL)), metadata=CI, timeout=30
        )
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "candidate.version" in (missing.value.details() or "")


def _artifact_text(stack: Stack, uri: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(
            download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=stack.mlflow)
        ).read_text()


def _records(rows: list[dict], version: str, start: float, shift: float = 0.0) -> list[dict]:
    return [
        {
            "prediction_id": uuid.uuid4().hex,
            "route": "champion",
            "model": MODEL,
            "version": version,
            "entity_id": f"rx-{i}",
            "prediction": row.pop(PREDICTION),
            "latency_ms": 1.0,
            "inputs": {**row, "days_supply": row["days_supply"] + shift},
            "at": start + i,
        }
        for i, row in enumerate(rows)
    ]


def test_model_health_joins_outcomes_and_detects_drift(stack: Stack) -> None:
    champion = _aliases(stack)["champion"]
    mlflow = MlflowClient(tracking_uri=stack.mlflow, registry_uri=stack.mlflow)
    found = mlflow.get_model_version(MODEL, champion)
    run = mlflow.get_run(found.run_id or "")
    evaluation_id = (found.tags or {})[EVALUATION_ID_TAG]
    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifacts(
            artifact_uri=f"{run.info.artifact_uri}/{REPORTS}/{evaluation_id}/{REFERENCE_FILE}",
            dst_path=tmp,
            tracking_uri=stack.mlflow,
        )
        reference = pl.read_parquet(path)
    # Answers to requests like the ones the model was judged on: a random sample of them.
    sample = reference.sample(n=min(400, reference.height), seed=3).to_dicts()
    now = time.time()
    steady = _records([dict(r) for r in sample], champion, now - 3600)
    # Outcomes for three in four; prediction - truth alternates +2 and -4 days (an even
    # count of them: MAE 3, bias -1).
    labelled = steady[: len(steady) // 8 * 6]
    outcomes = {
        r["prediction_id"]: r["prediction"] - (2.0 if i % 2 else -4.0)
        for i, r in enumerate(labelled)
    }
    land(stack.ingest, steady, outcomes)

    request = E.GetModelHealthRequest(model=refs_pb2.ModelRef(name=MODEL))
    health = stack.evaluator.GetModelHealth(request, metadata=CI, timeout=60)
    metrics = health.online_metrics
    assert health.model.version == champion
    assert metrics["predictions"] == len(steady) and metrics["labelled"] == len(labelled)
    assert metrics["coverage"] == pytest.approx(len(labelled) / len(steady))
    assert metrics["mae"] == pytest.approx(3.0) and metrics["bias"] == pytest.approx(-1.0)
    assert metrics[f"mae/{champion}/champion"] == pytest.approx(3.0)
    assert any(key.startswith("mae/payer=") for key in metrics)
    drift = {d.feature: d for d in health.drift}
    assert {"days_supply", PREDICTION, "payer", "channel"} <= set(drift)
    assert not any(d.drifted for d in health.drift), [d for d in health.drift if d.drifted]
    assert not health.retrain_recommended
    # Outcomes arrived in this window: its report plots error over time and by subgroup.
    steady_page = _artifact_text(stack, health.report_uri)
    assert "No retrain recommended." in steady_page and steady_page.count("<img") == 3
    # A dashboard polling an unchanged window reads the same report, not a new one each time.
    again = stack.evaluator.GetModelHealth(request, metadata=CI, timeout=60)
    assert again.report_uri == health.report_uri

    # Later requests carry a shifted days supply (a payer forcing 90-day fills, say).
    shifted_from = time.time()
    shifted = _records([dict(r) for r in sample], champion, shifted_from, shift=60.0)
    land(stack.ingest, shifted, {})
    since = Timestamp()
    since.FromSeconds(int(shifted_from))
    request = E.GetModelHealthRequest(model=refs_pb2.ModelRef(name=MODEL), since=since)
    health = stack.evaluator.GetModelHealth(request, metadata=CI, timeout=60)
    drift = {d.feature: d for d in health.drift}
    assert drift["days_supply"].drifted and drift["days_supply"].psi > 1.0
    assert health.online_metrics["predictions"] == len(shifted)
    assert health.retrain_recommended
    assert any(reason.startswith("days_supply drifted") for reason in health.reasons)
    # What Prometheus sees: the last check's drift and retrain advice, the last online MAE.
    samples = scrape(stack.metrics_url, {"model", "version", "feature"})
    model = (("model", MODEL), ("version", champion))
    days_supply = (("feature", "days_supply"), *model)
    assert samples[("wavepod_drift_psi", days_supply)] == pytest.approx(drift["days_supply"].psi)
    assert samples[("wavepod_drift_z_score", days_supply)] == pytest.approx(
        drift["days_supply"].z_score
    )
    assert samples[("wavepod_retrain_recommended", model)] == 1
    assert samples[("wavepod_online_mae_days", model)] == pytest.approx(3.0)
    # And what a person reads: this window's report, logged to the version's MLflow run.
    assert health.report_uri.startswith(run.info.artifact_uri + "/monitoring/")
    page = _artifact_text(stack, health.report_uri)
    assert "Retrain recommended: days_supply drifted" in page
    assert page.count("<img") == 1  # drift per feature (no outcomes yet: no error plots)


def test_the_retrain_loop_retrains_judges_and_promotes_on_drift(stack: Stack) -> None:
    """After the drifted window above: one pass of the loop, no human decision in it."""
    champion = _aliases(stack)["champion"]
    request = E.RetrainRequest(model_name=MODEL)
    with pytest.raises(grpc.RpcError) as denied:
        stack.evaluator.Retrain(request, metadata=CI, timeout=30)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    outcome = stack.evaluator.Retrain(request, metadata=OPS, timeout=900)
    assert outcome.health.retrain_recommended and outcome.started
    new = outcome.candidate.version
    assert int(new) > max(int(v) for v in stack.versions)
    # Same data and seed as the champion's run: as good as it, which the default gate
    # (no loss allowed) passes.
    assert outcome.evaluation.reference == f"champion version {champion}"
    assert outcome.evaluation.passed and outcome.promoted
    assert _aliases(stack) == {"champion": new, "previous": champion}
    assert _serving(stack) == {new}
    last = AuditLog(stack.audit).entries()[-2:]
    assert [(e.actor, e.action, e.target) for e in last] == [
        ("ops", "model.promote", f"{MODEL}:{new}"),
        ("ops", "model.retrain", f"{MODEL}:{new}"),
    ]
    assert last[1].detail["promoted"]
    assert any(r.startswith("days_supply drifted") for r in last[1].detail["reasons"])
