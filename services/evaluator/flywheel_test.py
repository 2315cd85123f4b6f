"""The flywheel closes by itself: a model trained before the world changed degrades
online, the evaluator sees it, retrains, gates and promotes, and online error recovers.

The simulator's concept-drift knob, MailShipsEarlier: from CHANGE the mail pharmacy ships
refills 12 days earlier, so the same features now mean an earlier refill. Everything
flows as in production: the lake grows, callers send inline rows to the gateway (which
logs its answers and ships them to the lake), outcomes (each fill's actual next fill,
known to the simulator) come back as feedback through the gateway, and the only calls
to the evaluator are GetModelHealth (what a dashboard reads) and one Retrain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import grpc
import polars as pl
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from evaluator.testing import train
from feature.testing import write_fills
from ingest.testing import ingest_env
from trainer.testing import model_plane
from wavepod.common.v1 import refs_pb2, values_pb2
from wavepod.evaluator.v1 import evaluator_pb2 as E
from wavepod.evaluator.v1 import evaluator_pb2_grpc
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime.auth import hash_token
from wavepod.runtime.testing.process import service_process
from wavepod.runtime.testing.service_tokens import service_tokens
from wavepod.simulator.config import MailShipsEarlier, SimulationConfig
from wavepod.simulator.generate import PharmacyData, simulate
from wavepod.values import to_value

MODEL = "refill-flywheel"
CHANGE, RETRAIN_AT, END = date(2024, 3, 1), date(2025, 1, 1), date(2025, 4, 1)
OPS = (("authorization", "Bearer ops-token"),)
PHARMACY = (("authorization", "Bearer pharmacy-token"),)
LOOSE_LATENCY = E.GatePolicy(latency_budget_ms=50.0)  # a busy 2-core CI box
OUTCOMES = 1200  # per window: enough for MAE within about 0.25 days


@dataclass(frozen=True)
class Flywheel:
    data: PharmacyData
    lake: Path
    feature: str
    gateway: gateway_pb2_grpc.GatewayServiceStub
    evaluator: evaluator_pb2_grpc.EvaluatorServiceStub
    trainer: str
    operator: tuple[tuple[str, str], ...]  # an operator's token at the internal services


@pytest.fixture(scope="module")
def flywheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flywheel]:
    state = tmp_path_factory.mktemp("flywheel")
    data = simulate(
        SimulationConfig(
            patients=1500,
            seed=5,
            start=date(2023, 1, 1),
            end=date(2025, 6, 30),
            mail_ships_earlier=MailShipsEarlier(CHANGE),
        )
    )
    before = replace(data, fills=data.fills.filter(pl.col("fill_date") < CHANGE))
    tokens = state / "tokens"
    tokens.write_text(
        f"{hash_token('ops-token')} ops admin\n"
        f"{hash_token('pharmacy-token')} pharmacy predict,feedback\n"
    )
    # Services call services with the roles the stack gives them (least privilege): an
    # RPC the loop needs and a caller's roles lack fails here.
    internal = service_tokens(state)
    with (
        model_plane(state, data=before, auth=internal) as plane,
        service_process(
            "ingest.server",
            "ingest",
            {**ingest_env(state / "ingest-lake"), **internal.env("ingest")},
        ) as ingest,
    ):
        evaluator_env = {
            "WAVEPOD_EVALUATOR_LAKE": f"ingest://{ingest.address}",
            "WAVEPOD_EVALUATOR_TRAINER": plane.trainer.address,
            "WAVEPOD_EVALUATOR_MLFLOW_TRACKING_URI": plane.mlflow,
            "WAVEPOD_EVALUATOR_INFERENCE": plane.inference.address,
            "WAVEPOD_EVALUATOR_AUTH_TOKENS_FILE": str(tokens),
            "WAVEPOD_EVALUATOR_AUDIT_LOG": str(state / "evaluator-audit.jsonl"),
            "WAVEPOD_EVALUATOR_GATE_LATENCY_BUDGET_MS": "50",
            **internal.caller_env("evaluator"),
        }
        gateway_env = {
            "WAVEPOD_GATEWAY_INFERENCE": plane.inference.address,
            "WAVEPOD_GATEWAY_FEATURE_SERVICE": plane.feature.address,
            "WAVEPOD_GATEWAY_INGEST": ingest.address,
            "WAVEPOD_GATEWAY_MLFLOW_TRACKING_URI": plane.mlflow,
            "WAVEPOD_GATEWAY_ALIASES_REFRESH_SECONDS": "1",
            "WAVEPOD_GATEWAY_DEFAULT_MODEL": MODEL,
            "WAVEPOD_GATEWAY_AUTH_TOKENS_FILE": str(tokens),
            "WAVEPOD_GATEWAY_PREDICTION_LOG_DIR": str(state / "prediction-log"),
            "WAVEPOD_GATEWAY_PREDICTION_LOG_SHIP_SECONDS": "0.5",
            "WAVEPOD_GATEWAY_AUDIT_LOG": str(state / "gateway-audit.jsonl"),
            # Inline rows after a concept drift sit inside the training ranges, but
            # this test is about the loop, not about refusing edge values.
            "WAVEPOD_GATEWAY_RANGE_SLACK": "10",
            **internal.caller_env("gateway"),
        }
        with (
            service_process("evaluator.server", "evaluator", evaluator_env) as evaluator,
            service_process("gateway.server", "gateway", gateway_env) as gateway,
            grpc.insecure_channel(evaluator.address) as evaluator_channel,
            grpc.insecure_channel(gateway.address) as gateway_channel,
        ):
            yield Flywheel(
                data,
                state / "lake",
                plane.feature.address,
                gateway_pb2_grpc.GatewayServiceStub(gateway_channel),
                evaluator_pb2_grpc.EvaluatorServiceStub(evaluator_channel),
                plane.trainer.address,
                internal.operator_metadata,
            )


def _promote(flywheel: Flywheel, version: str) -> None:
    ref = refs_pb2.ModelRef(name=MODEL, version=version)
    evaluation = flywheel.evaluator.Evaluate(
        E.EvaluateRequest(candidate=ref, policy=LOOSE_LATENCY), metadata=OPS, timeout=300
    )
    assert evaluation.passed, [g.detail for g in evaluation.gates if not g.passed]
    flywheel.evaluator.Promote(
        E.PromoteRequest(model=ref, evaluation_id=evaluation.evaluation_id, reason="first"),
        metadata=OPS,
        timeout=120,
    )


def _requests(flywheel: Flywheel, start: date, end: date) -> pl.DataFrame:
    """Fills of [start, end) with their features as the feature service computes them at
    each fill, and the outcome the world will report: days to the actual next fill."""
    with grpc.insecure_channel(flywheel.feature) as channel:
        stub = feature_pb2_grpc.FeatureServiceStub(channel)
        built = stub.BuildTrainingSet(
            feature_pb2.BuildTrainingSetRequest(
                feature_set=feature_pb2.FeatureSetRef(name="refill", version="1")
            ),
            timeout=300,
            metadata=flywheel.operator,
        )
    truth = flywheel.data.fills.filter(~pl.col("censored")).select(
        "rx_id",
        "fill_date",
        (pl.col("next_fill_date") - pl.col("fill_date")).dt.total_days().alias("observed"),
    )
    rows = pl.read_parquet(built.training_set.uri).filter(
        pl.col("fill_date").is_between(start, end, closed="left")
    )
    return rows.join(truth, on=["rx_id", "fill_date"], how="inner")


def _serve(
    flywheel: Flywheel, requests: pl.DataFrame, names: list[str], outcomes: int = 0
) -> tuple[set[str], int]:
    """Each fill's features as an inline row through the gateway, and for an even sample
    of `outcomes` of them the outcome as feedback (each call waits for the ingest commit
    that carries it, concurrent calls share one; a sample keeps the test minutes
    shorter). Returns the versions that answered and the outcomes sent."""
    every = max(1, -(-requests.height // outcomes)) if outcomes else 0
    versions: set[str] = set()
    feedback: list[gateway_pb2.SubmitFeedbackRequest] = []
    for offset, batch in enumerate(requests.iter_slices(500)):
        rows = [
            values_pb2.Row(values={k: to_value(v) for k, v in row.items() if v is not None})
            for row in batch.select(names).to_dicts()
        ]
        reply = flywheel.gateway.Predict(
            gateway_pb2.PredictRequest(rows=rows), metadata=PHARMACY, timeout=60
        )
        versions.update(p.model_version for p in reply.predictions)
        for i, (p, observed) in enumerate(
            zip(reply.predictions, batch["observed"], strict=True), start=offset * 500
        ):
            if every and i % every == 0:
                feedback.append(
                    gateway_pb2.SubmitFeedbackRequest(
                        prediction_id=p.prediction_id, observed_value=float(observed)
                    )
                )

    def submit(request: gateway_pb2.SubmitFeedbackRequest) -> None:
        for attempt in range(3):  # as a pharmacy system would: UNAVAILABLE is retryable
            try:
                flywheel.gateway.SubmitFeedback(request, metadata=PHARMACY, timeout=60)
                return
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 2:
                    raise
                time.sleep(1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(submit, feedback))
    return versions, len(feedback)


def _health(flywheel: Flywheel, since: float, predictions: int, labelled: int) -> E.ModelHealth:
    """Health over the window from `since`, once all its predictions reached the lake."""
    stamp = Timestamp()
    stamp.FromSeconds(int(since))
    request = E.GetModelHealthRequest(model=refs_pb2.ModelRef(name=MODEL), since=stamp)
    deadline = time.monotonic() + 120
    while True:
        health = flywheel.evaluator.GetModelHealth(request, metadata=OPS, timeout=120)
        metrics = health.online_metrics
        if metrics["predictions"] >= predictions and metrics["labelled"] >= labelled:
            return health
        assert time.monotonic() < deadline, dict(metrics)
        time.sleep(2)


def test_concept_drift_is_detected_retrained_away_and_online_error_recovers(
    flywheel: Flywheel,
) -> None:
    v1 = train(flywheel.trainer, MODEL, 3, 1, flywheel.operator)
    _promote(flywheel, v1)
    with grpc.insecure_channel(flywheel.feature) as channel:
        sets = feature_pb2_grpc.FeatureServiceStub(channel).ListFeatureSets(
            feature_pb2.ListFeatureSetsRequest(), metadata=flywheel.operator
        )
    names = [f.name for f in sets.feature_sets[0].features]

    # The change happens; ten months of fills land; the champion answers them. (Ten: the
    # trainer learns from the oldest 70% of labelled rows, so the change must reach them.)
    write_fills(
        flywheel.lake,
        flywheel.data.fills.filter(
            pl.col("fill_date").is_between(CHANGE, RETRAIN_AT, closed="left")
        ),
        name="after-change",
    )
    drifted = _requests(flywheel, CHANGE, RETRAIN_AT)
    since = time.time() - 1
    versions, sent = _serve(flywheel, drifted, names, OUTCOMES)
    assert versions == {v1}
    health = _health(flywheel, since, drifted.height, sent)
    degraded = health.online_metrics["mae"]
    mail_degraded = health.online_metrics["mae/channel=mail"]
    assert health.retrain_recommended
    assert any(r.startswith("online MAE") for r in health.reasons), health.reasons

    # The loop: health says retrain; the trainer learns from the grown lake; the gate
    # compares the candidate with the champion on the newest data; it is promoted.
    outcome = flywheel.evaluator.Retrain(
        E.RetrainRequest(model_name=MODEL), metadata=OPS, timeout=900
    )
    assert outcome.started and outcome.evaluation.passed and outcome.promoted, outcome
    v2 = outcome.candidate.version
    assert outcome.evaluation.reference == f"champion version {v1}"

    # Three more months: the new champion answers them, and online error is back.
    write_fills(
        flywheel.lake,
        flywheel.data.fills.filter(pl.col("fill_date").is_between(RETRAIN_AT, END, closed="left")),
        name="after-retrain",
    )
    later = _requests(flywheel, RETRAIN_AT, END)
    deadline = time.monotonic() + 30
    while _serve(flywheel, later.head(1), names)[0] != {v2}:  # the gateway's alias cache
        assert time.monotonic() < deadline
        time.sleep(1)
    since = time.time() - 1
    versions, sent = _serve(flywheel, later, names, OUTCOMES)
    assert versions == {v2}
    recovered = _health(flywheel, since, later.height, sent)
    print(
        f"online MAE: {degraded:.2f} d (v{v1}, after the change) -> "
        f"{recovered.online_metrics['mae']:.2f} d (v{v2}, retrained); mail "
        f"{mail_degraded:.2f} -> {recovered.online_metrics['mae/channel=mail']:.2f}"
    )
    assert recovered.online_metrics["mae/channel=mail"] < 0.6 * mail_degraded
    assert recovered.online_metrics["mae"] < 0.95 * degraded
    assert not any(r.startswith("online MAE") for r in recovered.reasons), recovered.reasons
