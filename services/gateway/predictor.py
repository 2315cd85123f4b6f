"""The gateway's transport-neutral data plane: validate, look up, route, infer, log."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gateway.backends import FeatureBackend, InferenceBackend
from gateway.catalog import ModelCatalog, ServedModel
from gateway.metrics import PredictionMetrics
from gateway.prediction_log import PredictionLog
from gateway.routing import Group, Route, Router
from wavepod.runtime.status import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ServiceError,
)

log = logging.getLogger(__name__)

# Shadow calls waiting on the challenger; beyond this, shadow scoring is skipped.
MAX_PENDING_SHADOWS = 256


@dataclass(frozen=True)
class PredictRequest:
    model: str
    version: str
    entity_ids: tuple[str, ...]
    rows: tuple[Mapping[str, object], ...]
    request_id: str = ""


@dataclass(frozen=True)
class Prediction:
    prediction_id: str
    entity_id: str
    value: float
    version: str
    route: Route


@dataclass(frozen=True)
class PredictResult:
    model: str
    version: str  # "" when the rows were answered by different versions (a canary split)
    predictions: tuple[Prediction, ...]


def _finite(model: str, values: np.ndarray, version: str) -> tuple[np.ndarray, str]:
    """A NaN or infinite prediction is a broken model, never an answer."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise FailedPrecondition(
            f"model {model} version {version} returned non-finite predictions for"
            f" {bad.size} of {values.size} rows (first: row {int(bad[0])})"
        )
    return values, version


class Predictor:
    def __init__(
        self,
        catalog: ModelCatalog,
        features: FeatureBackend,
        inference: InferenceBackend,
        log: PredictionLog,
        default_model: str,
        max_rows: int,
        range_slack: float,
        router: Router,
        metrics: PredictionMetrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.features = features
        self.inference = inference
        self.log = log
        self.default_model = default_model
        self.max_rows = max_rows
        self.range_slack = range_slack
        self.router = router
        self.metrics = metrics or PredictionMetrics()
        self._shadows: set[asyncio.Task[None]] = set()
        self.shadows_dropped = 0

    def _check_shape(self, request: PredictRequest) -> None:
        n = len(request.entity_ids) + len(request.rows)
        if request.entity_ids and request.rows:
            raise InvalidArgument(FieldViolation("entity_ids", "send entity ids or rows, not both"))
        if n == 0:
            raise InvalidArgument(FieldViolation("rows", "send at least one entity id or row"))
        if n > self.max_rows:
            raise InvalidArgument(
                FieldViolation("rows", f"{n} rows exceed the limit of {self.max_rows} per request")
            )
        blank = [i for i, e in enumerate(request.entity_ids) if not e]
        if blank:
            raise InvalidArgument([FieldViolation(f"entity_ids[{i}]", "is empty") for i in blank])

    async def predict(
        self, request: PredictRequest, caller: str = "", trace_id: str = ""
    ) -> PredictResult:
        started = time.perf_counter()
        self._check_shape(request)
        model = await self.catalog.get(request.model or self.default_model)
        signature = model.signature
        rows: Sequence[Mapping[str, object]]
        if request.entity_ids:
            # Values from the platform's own store: known names and types; drift in their
            # ranges is the evaluator's to watch, not a reason to refuse a prediction.
            rows = await self.features.rows(
                signature.feature_set, request.entity_ids, signature.names
            )
        else:
            rows = request.rows
            problems = signature.violations(rows, self.range_slack)
            if problems:
                raise InvalidArgument([FieldViolation(p.field, p.description) for p in problems])
        ids = request.entity_ids or tuple("" for _ in rows)
        prediction_ids = tuple(uuid.uuid4().hex for _ in rows)
        # The canary is sticky per entity; inline rows stick per request id when given.
        keys = request.entity_ids or tuple(request.request_id or p for p in prediction_ids)
        plan = await self.router.plan(model.name, request.version, keys)
        encoded = signature.encode_rows(rows)
        answers = await asyncio.gather(
            *(self._answer(model, encoded, group, plan.champion) for group in plan.groups)
        )
        values = np.empty(len(rows))
        versions, routes = [""] * len(rows), [Route.CHAMPION] * len(rows)
        for group, (group_values, version, route) in zip(plan.groups, answers, strict=True):
            self.metrics.record(model.name, version, route.value, group_values)
            values[list(group.rows)] = group_values
            for i in group.rows:
                versions[i], routes[i] = version, route
        predictions = tuple(
            Prediction(*fields)
            for fields in zip(prediction_ids, ids, values.tolist(), versions, routes, strict=True)
        )
        latency_ms = (time.perf_counter() - started) * 1000
        records: list[dict[str, object]] = [
            {
                "prediction_id": p.prediction_id,
                "at": time.time(),
                "model": model.name,
                "version": p.version,
                "entity_id": p.entity_id,
                "inputs": dict(row),
                "prediction": p.value,
                "latency_ms": latency_ms,
                "route": p.route.value,
                "caller": caller,
                "trace_id": trace_id,
                "request_id": request.request_id,
            }
            for p, row in zip(predictions, rows, strict=True)
        ]
        for record in records:
            self.log.append(record)
        if plan.shadow_version:
            champion_rows = [i for i, r in enumerate(routes) if r is not Route.CANARY]
            if champion_rows:
                self._start_shadow(
                    model,
                    encoded[champion_rows],
                    plan.shadow_version,
                    [records[i] for i in champion_rows],
                )
        # One version for the response when one answered; else each prediction says.
        version = versions[0] if len(set(versions)) == 1 else ""
        return PredictResult(model.name, version, predictions)

    async def _answer(
        self, model: ServedModel, encoded: np.ndarray, group: Group, champion: str
    ) -> tuple[np.ndarray, str, Route]:
        rows = encoded if len(group.rows) == encoded.shape[0] else encoded[list(group.rows)]
        if group.route is not Route.CANARY:
            values, version = await self._champion(model, rows, group.version)
            return values, version, group.route
        started = time.perf_counter()
        try:
            values, version = _finite(
                model.name, *await self.inference.predict(model, rows, group.version)
            )
        except ServiceError as error:
            # The caller gets the champion's answer; the failure counts against the canary.
            self.router.record_canary(
                model.name, group.version, False, (time.perf_counter() - started) * 1000
            )
            log.warning(
                "canary call failed",
                extra={"model": model.name, "version": group.version, "error": error.message},
            )
            values, version = await self._champion(model, rows, champion)
            return values, version, Route.FALLBACK
        self.router.record_canary(
            model.name, group.version, True, (time.perf_counter() - started) * 1000
        )
        return values, version, Route.CANARY

    async def _champion(
        self, model: ServedModel, rows: np.ndarray, version: str
    ) -> tuple[np.ndarray, str]:
        try:
            answer = await self.inference.predict(model, rows, version)
        except NotFound:
            if not version:
                raise
            # The registry named a champion the inference service does not serve (yet):
            # the newest serving version answers, and the response says which.
            log.warning("champion not served", extra={"model": model.name, "version": version})
            answer = await self.inference.predict(model, rows, "")
        return _finite(model.name, *answer)

    def _start_shadow(
        self, model: ServedModel, rows: np.ndarray, version: str, records: list[dict[str, object]]
    ) -> None:
        if len(self._shadows) >= MAX_PENDING_SHADOWS:
            self.shadows_dropped += len(records)  # shadow scoring never slows the champion
            return
        task = asyncio.create_task(self._shadow(model, rows, version, records))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(
        self, model: ServedModel, rows: np.ndarray, version: str, records: list[dict[str, object]]
    ) -> None:
        started = time.perf_counter()
        try:
            values, served = _finite(
                model.name, *await self.inference.predict(model, rows, version)
            )
        except ServiceError as error:
            log.warning(
                "shadow call failed",
                extra={"model": model.name, "version": version, "error": error.message},
            )
            return
        latency_ms = (time.perf_counter() - started) * 1000
        for record, value in zip(records, values.tolist(), strict=True):
            self.log.append(
                {
                    **record,
                    "version": served,
                    "prediction": value,
                    "latency_ms": latency_ms,
                    "route": Route.SHADOW.value,
                }
            )

    async def close(self) -> None:
        """Waits for shadow scoring in flight, so its records reach the log."""
        await asyncio.gather(*self._shadows, return_exceptions=True)
