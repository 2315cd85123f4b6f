"""The gateway's transport-neutral data plane: validate, look up, infer, log."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.backends import FeatureBackend, InferenceBackend
from gateway.catalog import ModelCatalog
from gateway.prediction_log import PredictionLog
from wavepod.runtime.status import FieldViolation, InvalidArgument


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


@dataclass(frozen=True)
class PredictResult:
    model: str
    version: str
    predictions: tuple[Prediction, ...]


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
    ) -> None:
        self.catalog = catalog
        self.features = features
        self.inference = inference
        self.log = log
        self.default_model = default_model
        self.max_rows = max_rows
        self.range_slack = range_slack

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
        values, version = await self.inference.predict(
            model, signature.encode_rows(rows), request.version
        )
        ids = request.entity_ids or tuple("" for _ in rows)
        predictions = tuple(
            Prediction(uuid.uuid4().hex, entity, float(value))
            for entity, value in zip(ids, values, strict=True)
        )
        latency_ms = (time.perf_counter() - started) * 1000
        for prediction, row in zip(predictions, rows, strict=True):
            self.log.append(
                {
                    "prediction_id": prediction.prediction_id,
                    "at": time.time(),
                    "model": model.name,
                    "version": version,
                    "entity_id": prediction.entity_id,
                    "inputs": dict(row),
                    "prediction": prediction.value,
                    "latency_ms": latency_ms,
                    "route": "champion",
                    "caller": caller,
                    "trace_id": trace_id,
                    "request_id": request.request_id,
                }
            )
        return PredictResult(model.name, version, predictions)
