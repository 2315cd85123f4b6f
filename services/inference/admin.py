"""InferenceAdminService: publish a registered model version and start serving it."""

from __future__ import annotations

import asyncio

import grpc

from inference.publish import BatchingChoice, publish_from_mlflow
from inference.serving import ModelServer
from wavepod.inference.v1 import inference_pb2, inference_pb2_grpc


class InferenceAdminServicer(inference_pb2_grpc.InferenceAdminServiceServicer):
    def __init__(self, models: ModelServer, tracking_uri: str, defaults: BatchingChoice) -> None:
        self._models = models
        self._tracking_uri = tracking_uri
        self._defaults = defaults

    async def PublishModel(
        self, request: inference_pb2.PublishModelRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PublishModelResponse:
        batching = BatchingChoice(
            max_batch_size=request.max_batch_size or self._defaults.max_batch_size,
            max_queue_delay_microseconds=(
                request.max_queue_delay_microseconds or self._defaults.max_queue_delay_microseconds
            ),
        )
        published = await asyncio.to_thread(
            publish_from_mlflow,
            self._models.repository,
            self._tracking_uri,
            request.model.name,
            request.model.version,
            request.model.alias,
            batching,
            request.keep_serving,
        )
        await self._models.load(published.name)
        return inference_pb2.PublishModelResponse(
            repository_path=str(published.path), sha256=published.sha256
        )
