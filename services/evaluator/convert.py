"""Evaluator protos <-> the evaluator's types."""

from __future__ import annotations

from dataclasses import replace

from evaluator.evaluation import Evaluation
from evaluator.gates import GatePolicy
from evaluator.health import Health
from evaluator.promotion import ChampionChange
from evaluator.retrain import RetrainResult
from wavepod.common.v1 import refs_pb2
from wavepod.evaluator.v1 import evaluator_pb2 as E


def policy_from_proto(message: E.GatePolicy, defaults: GatePolicy) -> GatePolicy:
    overrides = {
        f.name: getattr(message, f.name)
        for f in message.DESCRIPTOR.fields
        if message.HasField(f.name)
    }
    return replace(defaults, **overrides)


def evaluation_to_proto(evaluation: Evaluation) -> E.Evaluation:
    champion = {(g.dimension, g.group): g for g in evaluation.champion_groups}
    return E.Evaluation(
        evaluation_id=evaluation.evaluation_id,
        candidate=refs_pb2.ModelRef(name=evaluation.model, version=evaluation.candidate),
        champion=refs_pb2.ModelRef(name=evaluation.model, version=evaluation.champion),
        candidate_metrics=evaluation.candidate_metrics,
        champion_metrics=evaluation.reference_metrics,
        subgroups=[
            E.SubgroupMetric(
                subgroup=f"{g.dimension}={g.group}",
                metric="mae",
                candidate=g.metrics["mae"],
                champion=(
                    champion[(g.dimension, g.group)].metrics["mae"]
                    if (g.dimension, g.group) in champion
                    else 0.0
                ),
                rows=g.rows,
            )
            for g in evaluation.candidate_groups
        ],
        gates=[
            E.GateResult(
                gate=g.gate,
                passed=g.passed,
                observed=g.observed,
                threshold=g.threshold,
                detail=g.detail,
            )
            for g in evaluation.gates
        ],
        passed=evaluation.passed,
        reference=evaluation.reference,
        rows=evaluation.rows,
        dataset_uri=evaluation.dataset_uri,
        fairness_gaps=evaluation.fairness_gaps,
        latency_p95_ms=evaluation.latency_p95_ms,
        report_uri=evaluation.report_uri,
    )


def change_to_proto(change: ChampionChange) -> E.PromoteResponse:
    return E.PromoteResponse(
        champion=refs_pb2.ModelRef(name=change.model, version=change.champion, alias="champion"),
        previous=refs_pb2.ModelRef(name=change.model, version=change.previous, alias="previous"),
    )


def health_to_proto(health: Health) -> E.ModelHealth:
    online = health.online
    metrics = {
        **online.metrics,
        "predictions": float(online.predictions),
        "labelled": float(online.labelled),
        "coverage": online.coverage,
        **{f"mae/{key}": m["mae"] for key, m in online.by_version.items()},
        **{f"mae/{g.dimension}={g.group}": g.metrics["mae"] for g in online.subgroups},
        **{f"mae/day/{w.start.date().isoformat()}": w.mae for w in online.windows},
    }
    return E.ModelHealth(
        model=refs_pb2.ModelRef(name=health.model, version=health.version),
        online_metrics=metrics,
        drift=[
            E.FeatureDrift(
                feature=d.feature,
                psi=d.psi,
                ks_statistic=d.ks_statistic,
                ks_p_value=d.ks_p_value,
                drifted=d.drifted,
                z_score=d.z_score,
                rows=d.rows,
            )
            for d in health.drift
        ],
        retrain_recommended=bool(health.reasons),
        reasons=health.reasons,
        report_uri=health.report_uri,
    )


def retrain_to_proto(result: RetrainResult) -> E.RetrainOutcome:
    outcome = E.RetrainOutcome(
        health=health_to_proto(result.health),
        started=bool(result.trainer_run_id),
        trainer_run_id=result.trainer_run_id,
        candidate=refs_pb2.ModelRef(name=result.health.model, version=result.version),
        promoted=result.promoted,
    )
    if result.evaluation is not None:
        outcome.evaluation.CopyFrom(evaluation_to_proto(result.evaluation))
    return outcome
