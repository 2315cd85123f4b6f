"""The KServe v2 / Triton data plane, on the stubs that tritonclient ships.

Server liveness, readiness and metadata are answered now; the model RPCs (repository,
ModelInfer, dynamic batching on ONNX Runtime) arrive with the model-plane milestone.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from wavepod.runtime import unbuilt

SERVER_NAME = "wavepod-inference"
# Triton extensions this server implements; grows as the model plane lands.
EXTENSIONS: tuple[str, ...] = ()
NOT_BUILT = "serving ONNX models arrives with the model-plane milestone (issue #5)"

_Base = unbuilt(
    service_pb2_grpc.GRPCInferenceServiceServicer,
    service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"],
    NOT_BUILT,
)


class InferenceServicer(_Base):  # type: ignore[valid-type,misc]
    def __init__(self, version: str, is_ready: Callable[[], bool]) -> None:
        self._version = version
        self._is_ready = is_ready

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
