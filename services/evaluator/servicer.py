"""The gRPC face of the evaluator: thin; the work is in evaluation.py and promotion.py."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import grpc
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from evaluator import convert
from evaluator.evaluation import REPORT_FILE, REPORTS, Evaluator
from evaluator.gates import GatePolicy
from evaluator.health import HealthCheck
from evaluator.promotion import Promoter
from evaluator.retrain import RetrainLoop
from wavepod.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from wavepod.registry import client, registry_error
from wavepod.runtime import unbuilt
from wavepod.runtime.auth import current_principal
from wavepod.runtime.status import FieldViolation, InvalidArgument

NOT_BUILT = "not offered by the evaluator"

_Base = unbuilt(
    evaluator_pb2_grpc.EvaluatorServiceServicer,
    evaluator_pb2.DESCRIPTOR.services_by_name["EvaluatorService"],
    NOT_BUILT,
)


def _actor() -> str:
    principal = current_principal.get()
    return principal.name if principal else "anonymous"


def _require(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(FieldViolation(field, "is required"))
    return value


class EvaluatorServicer(_Base):  # type: ignore[valid-type,misc]
    def __init__(
        self,
        evaluator: Evaluator,
        promoter: Promoter,
        health: HealthCheck,
        retrain: RetrainLoop,
        defaults: GatePolicy,
    ) -> None:
        self._evaluator = evaluator
        self._promoter = promoter
        self._health = health
        self._retrain = retrain
        self._defaults = defaults

    async def Evaluate(
        self, request: evaluator_pb2.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> evaluator_pb2.Evaluation:
        name = _require(request.candidate.name, "candidate.name")
        version = _require(request.candidate.version, "candidate.version")
        policy = convert.policy_from_proto(request.policy, self._defaults)
        try:
            evaluation = await asyncio.to_thread(
                self._evaluator.evaluate,
                name,
                version,
                request.dataset.uri,
                request.dataset.content_hash,
                policy,
            )
        except MlflowException as error:
            raise registry_error(
                error, f"evaluating {name} {version}", self._evaluator.tracking_uri
            ) from None
        return convert.evaluation_to_proto(evaluation)

    async def Promote(
        self, request: evaluator_pb2.PromoteRequest, context: grpc.aio.ServicerContext
    ) -> evaluator_pb2.PromoteResponse:
        change = await self._promoter.promote(
            _actor(),
            _require(request.model.name, "model.name"),
            _require(request.model.version, "model.version"),
            request.evaluation_id,
            request.reason,
        )
        return convert.change_to_proto(change)

    async def Rollback(
        self, request: evaluator_pb2.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> evaluator_pb2.PromoteResponse:
        change = await self._promoter.rollback(
            _actor(), _require(request.model_name, "model_name"), request.reason
        )
        return convert.change_to_proto(change)

    async def Report(
        self, request: evaluator_pb2.ReportRequest, context: grpc.aio.ServicerContext
    ) -> evaluator_pb2.ReportResponse:
        name = _require(request.model.name, "model.name")
        version = _require(request.model.version, "model.version")
        evaluation_id = _require(request.evaluation_id, "evaluation_id")
        uri = self._evaluator.tracking_uri

        def load() -> evaluator_pb2.ReportResponse:
            try:
                run_id = client(uri).get_model_version(name, version).run_id or ""
                artifact = f"{REPORTS}/{evaluation_id}/{REPORT_FILE}"
                report_uri = f"{client(uri).get_run(run_id).info.artifact_uri}/{artifact}"
                with tempfile.TemporaryDirectory() as tmp:
                    path = download_artifacts(
                        artifact_uri=report_uri, dst_path=tmp, tracking_uri=uri
                    )
                    html = Path(path).read_text()
                return evaluator_pb2.ReportResponse(html=html, uri=report_uri)
            except MlflowException as error:
                raise registry_error(
                    error, f"report {evaluation_id} of {name} {version}", uri
                ) from None

        return await asyncio.to_thread(load)

    async def GetModelHealth(
        self, request: evaluator_pb2.GetModelHealthRequest, context: grpc.aio.ServicerContext
    ) -> evaluator_pb2.ModelHealth:
        name = _require(request.model.name, "model.name")
        since = request.since.ToDatetime() if request.HasField("since") else None
        try:
            health = await asyncio.to_thread(self._health.check, name, request.model.version, since)
        except MlflowException as error:
            uri = self._evaluator.tracking_uri
            raise registry_error(error, f"health of {name}", uri) from None
        return convert.health_to_proto(health)

    async def Retrain(
        self, request: evaluator_pb2.RetrainRequest, context: grpc.aio.ServicerContext
    ) -> evaluator_pb2.RetrainOutcome:
        name = _require(request.model_name, "model_name")
        try:
            result = await self._retrain.run_once(_actor(), name, request.force)
        except MlflowException as error:
            raise registry_error(
                error, f"retraining {name}", self._evaluator.tracking_uri
            ) from None
        return convert.retrain_to_proto(result)
