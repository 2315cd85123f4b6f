"""The KServe v2 / Triton data plane, on the stubs that tritonclient ships.

A thin servicer: it converts protos (inference.convert) and delegates to the
transport-neutral ModelServer. Domain errors become the conventional status codes in
the runtime's error interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from inference import convert
from inference.serving import ModelServer
from wavepod.runtime import unbuilt
from wavepod.runtime.status import ServiceError
from wavepod.runtime.streams import DEFAULT_STREAM_WINDOW, answer_in_order

SERVER_NAME = "wavepod-inference"
# Triton extensions this server implements.
EXTENSIONS = ("model_repository", "statistics", "model_configuration", "schedule_policy")
NOT_BUILT = "shared-memory tensors, tracing and log settings are not offered by this server"

_Base = unbuilt(
    service_pb2_grpc.GRPCInferenceServiceServicer,
    service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"],
    NOT_BUILT,
)


class InferenceServicer(_Base):  # type: ignore[valid-type,misc]
    def __init__(
        self,
        version: str,
        models: ModelServer,
        is_ready: Callable[[], bool],
        stream_window: int = DEFAULT_STREAM_WINDOW,
    ) -> None:
        self._version = version
        self._models = models
        self._is_ready = is_ready
        self._stream_window = stream_window

    async def ServerLive(
        self, request: service_pb2.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ServerLiveResponse:
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: service_pb2.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ServerReadyResponse:
        return service_pb2.ServerReadyResponse(ready=self._is_ready())

    async def ServerMetadata(
        self, request: service_pb2.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ServerMetadataResponse:
        return service_pb2.ServerMetadataResponse(
            name=SERVER_NAME, version=self._version, extensions=list(EXTENSIONS)
        )

    async def ModelReady(
        self, request: service_pb2.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelReadyResponse:
        try:
            self._models.serving(request.name, request.version)
        except ServiceError:
            return service_pb2.ModelReadyResponse(ready=False)
        return service_pb2.ModelReadyResponse(ready=True)

    async def ModelMetadata(
        self, request: service_pb2.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelMetadataResponse:
        return convert.metadata_response(self._models.serving(request.name, request.version))

    async def ModelConfig(
        self, request: service_pb2.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelConfigResponse:
        scheduler = self._models.serving(request.name, request.version)
        return service_pb2.ModelConfigResponse(config=scheduler.model.effective_config())

    async def ModelInfer(
        self, request: service_pb2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelInferResponse:
        inputs = convert.inputs_from_request(request)
        scheduler, outputs = await self._models.infer(
            request.model_name, request.model_version, inputs
        )
        return convert.infer_response(request, scheduler, outputs)

    async def ModelStreamInfer(
        self,
        requests: AsyncIterator[service_pb2.ModelInferRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[service_pb2.ModelStreamInferResponse]:
        # Errors travel in the stream (as Triton does) so one bad request ends nothing.
        # Up to `stream_window` requests are computed at once, so a stream's requests share
        # dynamic batches as concurrent unary calls do; answers keep request order.
        async def answer(
            request: service_pb2.ModelInferRequest,
        ) -> service_pb2.ModelStreamInferResponse:
            try:
                response = await self.ModelInfer(request, context)
            except ServiceError as error:
                return service_pb2.ModelStreamInferResponse(error_message=error.message)
            return service_pb2.ModelStreamInferResponse(infer_response=response)

        async for response in answer_in_order(requests, answer, self._stream_window):
            yield response

    async def ModelStatistics(
        self, request: service_pb2.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelStatisticsResponse:
        if request.name:
            schedulers = [self._models.serving(request.name, request.version)]
        else:
            schedulers = self._models.loaded()
        return service_pb2.ModelStatisticsResponse(
            model_stats=[convert.statistics(s) for s in schedulers]
        )

    async def RepositoryIndex(
        self, request: service_pb2.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.RepositoryIndexResponse:
        entries = self._models.index()
        if request.ready:
            entries = [e for e in entries if e.state == "READY"]
        return convert.index_response(entries)

    async def RepositoryModelLoad(
        self, request: service_pb2.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.RepositoryModelLoadResponse:
        await self._models.load(request.model_name)
        return service_pb2.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: service_pb2.RepositoryModelUnloadRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.RepositoryModelUnloadResponse:
        await self._models.unload(request.model_name)
        return service_pb2.RepositoryModelUnloadResponse()
