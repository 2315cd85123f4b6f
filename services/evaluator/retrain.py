"""The retrain loop: health -> (when it recommends) a trainer run on fresh data -> the
gate -> promotion, with no human step. Every pass that acts is an audit entry.

The new run repeats the champion's recorded spec (feature set, label, budget, seed,
baseline) but builds a new training set, so it learns from what the lake holds now.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc

from evaluator.evaluation import Evaluation, Evaluator
from evaluator.gates import GatePolicy
from evaluator.health import Health, HealthCheck
from evaluator.promotion import Promoter
from wavepod.feature.v1 import feature_pb2
from wavepod.registry import CHAMPION, client
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.status import FailedPrecondition, NotFound, Unavailable
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc

log = logging.getLogger(__name__)

RETRAIN = "model.retrain"
LOOP_ACTOR = "evaluator/retrain-loop"


@dataclass(frozen=True)
class RetrainResult:
    health: Health
    trainer_run_id: str = ""
    version: str = ""
    evaluation: Evaluation | None = None
    promoted: bool = False


def spec_from_tag(text: str, model: str) -> trainer_pb2.RunSpec:
    """The trainer's recorded spec (its `wavepod.spec` run tag), minus the training set."""
    spec = json.loads(text or "{}")
    if not spec.get("feature_set"):
        raise FailedPrecondition(f"the champion of {model} records no training spec to repeat")
    budget = spec.get("budget", {})
    return trainer_pb2.RunSpec(
        model_name=model,
        feature_set=feature_pb2.FeatureSetRef(
            name=spec["feature_set"], version=spec.get("feature_set_version", "")
        ),
        label_column=spec.get("label", ""),
        budget=trainer_pb2.SearchBudget(
            max_trials=int(budget.get("max_trials", 20)),
            max_seconds=int(budget.get("max_seconds", 900)),
        ),
        seed=int(spec.get("seed", 0)),
        baseline_feature=spec.get("baseline_feature", ""),
    )


class RetrainLoop:
    def __init__(
        self,
        health: HealthCheck,
        evaluator: Evaluator,
        promoter: Promoter,
        trainer: Callable[[], grpc.aio.Channel],
        gate: GatePolicy,
        window: timedelta,
        audit: AuditLog,
        run_timeout: float,
    ) -> None:
        self._health = health
        self._evaluator = evaluator
        self._promoter = promoter
        self._trainer = trainer
        self._gate = gate
        self._window = window
        self._audit = audit
        self._run_timeout = run_timeout

    async def run_once(self, actor: str, model: str, force: bool = False) -> RetrainResult:
        since = datetime.now(UTC).replace(tzinfo=None) - self._window
        health = await asyncio.to_thread(self._health.check, model, "", since)
        if not health.reasons and not force:
            return RetrainResult(health)
        reasons = health.reasons or ["forced"]
        uri = self._evaluator.tracking_uri
        champion = client(uri).get_model_version_by_alias(model, CHAMPION)
        run_tags = client(uri).get_run(champion.run_id or "").data.tags
        spec = spec_from_tag(run_tags.get("wavepod.spec", ""), model)
        run = await self._train(spec)
        version = run.registered_model.version
        evaluation = await asyncio.to_thread(
            self._evaluator.evaluate, model, version, "", "", self._gate
        )
        promoted = False
        if evaluation.passed:
            await self._promoter.promote(
                actor, model, version, evaluation.evaluation_id, "retrain: " + "; ".join(reasons)
            )
            promoted = True
        self._audit.append(
            actor,
            RETRAIN,
            f"{model}:{version}",
            {
                "reasons": reasons,
                "trainer_run_id": run.run_id,
                "evaluation_id": evaluation.evaluation_id,
                "failed_gates": evaluation.failed_gates(),
                "promoted": promoted,
            },
        )
        return RetrainResult(health, run.run_id, version, evaluation, promoted)

    async def _train(self, spec: trainer_pb2.RunSpec) -> trainer_pb2.Run:
        stub = trainer_pb2_grpc.TrainerServiceStub(self._trainer())
        try:
            started = await stub.StartRun(trainer_pb2.StartRunRequest(spec=spec), timeout=60)
            async for _ in stub.WatchRun(
                trainer_pb2.WatchRunRequest(run_id=started.run_id), timeout=self._run_timeout
            ):
                pass
            run = await stub.GetRun(trainer_pb2.GetRunRequest(run_id=started.run_id), timeout=30)
        except grpc.aio.AioRpcError as error:
            raise Unavailable(f"trainer: {error.code().name}: {error.details()}") from None
        if run.state != trainer_pb2.RUN_STATE_SUCCEEDED:
            raise FailedPrecondition(f"the retrain run {run.run_id} failed: {run.error}")
        return run

    async def watch(self, models: list[str], every: float) -> None:
        """The loop itself: each model, every `every` seconds, until cancelled."""
        while True:
            await asyncio.sleep(every)
            for model in models:
                try:
                    result = await self.run_once(LOOP_ACTOR, model)
                except (NotFound, FailedPrecondition, Unavailable) as error:
                    log.warning(
                        "retrain check skipped", extra={"model": model, "error": str(error)}
                    )
                    continue
                if result.version:
                    log.info(
                        "retrained",
                        extra={
                            "model": model,
                            "version": result.version,
                            "promoted": result.promoted,
                        },
                    )
