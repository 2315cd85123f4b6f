"""The gateway's two backends: online features and inference, each behind a breaker.

Concurrent requests for the same model are micro-batched into one ModelInfer call, and
concurrent lookups of the same features into one GetOnlineFeatures call (the runtime's
Coalescer); inference is idempotent, so one retry is allowed when the backend was
unavailable and the deadline leaves room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc
import numpy as np
import tritonclient.grpc.aio as triton
from opentelemetry import propagate
from tritonclient.utils import InferenceServerException

from gateway.breaker import CircuitBreaker
from gateway.catalog import ServedModel, inference_error
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.runtime.batching import Coalescer, Waiting, row_slices
from wavepod.runtime.status import NotFound, ServiceError, Unavailable
from wavepod.values import rows_from_columns

Row = dict[str, object]
# Predictions and the model version that computed them (from the inference response: the
# catalog's cached version may lag a swap by up to model_refresh_seconds).
Answer = tuple[np.ndarray, str]
# Feature rows, and for each whether the online store lacks that entity.
Lookup = tuple[list[Row], list[bool]]


class InferenceBackend:
    def __init__(
        self,
        client: triton.InferenceServerClient,
        breaker: CircuitBreaker,
        timeout: float,
        headers: dict[str, str] | None,
        batch_rows: int,
        batch_delay_s: float,
    ) -> None:
        self._client = client
        self._headers = headers
        self._breaker = breaker
        self._timeout = timeout
        self._batch_rows = batch_rows
        self._batch_delay = batch_delay_s
        self._coalescers: dict[tuple[str, str, str], Coalescer[np.ndarray, Answer]] = {}

    async def predict(self, model: ServedModel, rows: np.ndarray, version: str) -> Answer:
        """Predictions for `rows`, in calls of at most the model's max_batch_size rows."""
        size = min(self._batch_rows, model.max_batch_size)
        if rows.shape[0] <= size:
            return await self._submit(model, rows, version, size)
        chunks = [rows[i : i + size] for i in range(0, rows.shape[0], size)]
        parts = await asyncio.gather(*(self._submit(model, c, version, size) for c in chunks))
        # Chunks that straddle a swap: the request reports the newest version that answered.
        return np.concatenate([p[0] for p in parts]), max((p[1] for p in parts), key=int)

    async def _submit(
        self, model: ServedModel, rows: np.ndarray, version: str, size: int
    ) -> Answer:
        key = (model.name, version, model.signature.input_name)
        coalescer = self._coalescers.get(key)
        if coalescer is None:

            async def execute(batch: Sequence[Waiting[np.ndarray, Answer]]) -> list[Answer]:
                joined = (
                    batch[0].item if len(batch) == 1 else np.concatenate([w.item for w in batch])
                )
                values, served = await self._call(model, joined, version)
                return [(values[rows], served) for rows in row_slices(batch)]

            # Two calls in flight: one answering while the next batch gathers.
            coalescer = Coalescer(
                execute, size, self._batch_delay, concurrency=2, span_name=f"infer {model.name}"
            )
            self._coalescers[key] = coalescer
        return await coalescer.submit(rows, rows.shape[0])

    async def _call(self, model: ServedModel, rows: np.ndarray, version: str) -> Answer:
        signature = model.signature
        tensor = triton.InferInput(signature.input_name, list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        output = triton.InferRequestedOutput(signature.output_name)
        deadline = time.monotonic() + self._timeout
        # tritonclient takes no interceptors: the trace context travels as headers.
        headers = dict(self._headers or {})
        propagate.inject(headers)
        for attempt in (1, 2):
            self._breaker.check()
            try:
                result = await self._client.infer(
                    model.name,
                    [tensor],
                    model_version=version,
                    outputs=[output],
                    headers=headers,
                    client_timeout=max(deadline - time.monotonic(), 0.001),
                )
            except InferenceServerException as error:
                mapped = inference_error(error, f"infer {model.name}")
                if not isinstance(mapped, Unavailable):
                    raise mapped from None
                self._breaker.failure()
                if attempt == 2 or deadline - time.monotonic() < self._timeout / 2:
                    raise mapped from None
                continue
            self._breaker.success()
            values = np.asarray(result.as_numpy(signature.output_name)).reshape(-1)
            return values, result.get_response().model_version
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._coalescers.values()))


class FeatureBackend:
    """Online feature rows; concurrent lookups of one feature set share a call, as
    concurrent rows share an inference call (entity-id requests are the common case)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        breaker: CircuitBreaker,
        timeout: float,
        batch_rows: int,
        batch_delay_s: float,
    ) -> None:
        self._stub = feature_pb2_grpc.FeatureServiceStub(channel)
        self._breaker = breaker
        self._timeout = timeout
        self._batch_rows = batch_rows
        self._batch_delay = batch_delay_s
        self._coalescers: dict[tuple[str, tuple[str, ...]], Coalescer[Sequence[str], Lookup]] = {}

    async def rows(
        self, feature_set: str, entity_ids: Sequence[str], names: Sequence[str]
    ) -> list[Row]:
        """One row per entity, in order; NOT_FOUND names entities the store lacks."""
        key = (feature_set, tuple(names))
        coalescer = self._coalescers.get(key)
        if coalescer is None:

            async def execute(batch: Sequence[Waiting[Sequence[str], Lookup]]) -> list[Lookup]:
                ids = [entity for w in batch for entity in w.item]
                rows, missing = await self._call(feature_set, ids, names)
                return [(rows[part], missing[part]) for part in row_slices(batch)]

            coalescer = Coalescer(
                execute,
                self._batch_rows,
                self._batch_delay,
                concurrency=2,
                span_name=f"features {feature_set}",
            )
            self._coalescers[key] = coalescer
        rows, missing = await coalescer.submit(entity_ids, len(entity_ids))
        if any(missing):
            lacking = [e for e, m in zip(entity_ids, missing, strict=True) if m]
            raise NotFound(f"no online features for entities {lacking[:10]} in {feature_set}")
        return rows

    async def _call(self, feature_set: str, entity_ids: list[str], names: Sequence[str]) -> Lookup:
        name, _, version = feature_set.partition(":")
        self._breaker.check()
        try:
            reply = await self._stub.GetOnlineFeatures(
                feature_pb2.GetOnlineFeaturesRequest(
                    feature_set=feature_pb2.FeatureSetRef(name=name, version=version),
                    entity_ids=entity_ids,
                    features=list(names),
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                self._breaker.failure()
                raise Unavailable(f"feature service: {error.details()}") from None
            raise ServiceError(
                f"feature service answered {error.code().name}: {error.details()}"
            ) from None
        self._breaker.success()
        missing = [e.missing for e in reply.entities]
        return rows_from_columns(reply.columns, len(entity_ids)), missing

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._coalescers.values()))
