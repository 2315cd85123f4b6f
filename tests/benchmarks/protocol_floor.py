"""The protocol floor: bare grpc.aio servers, no model, no checks, no interceptors.

    python -m benchmarks.protocol_floor  # serves on 127.0.0.1:$FLOOR_PORT

- ModelInfer answered with zeros: what one Python gRPC hop costs on this machine with
  the same client (tritonclient) and the same messages.
- With FLOOR_RELAY_TO=<address of a zeros server>, also the gateway's Predict as a bare
  relay: one ModelInfer to that server per request (inline rows), two in a row for
  entity ids (the online-feature lookup's hop, then inference's), zeros back. What the
  gateway's two or three hops cost with nothing else done.

The serving benchmarks measure these beside wavepod, so a figure reads against what
Python gRPC itself allows here, not only against a peer.
"""

from __future__ import annotations

import asyncio
import os

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime import unbuilt
from wavepod.runtime.server import loop_factory
from wavepod.runtime.settings import ServiceSettings


class ZerosServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    async def ServerLive(
        self, request: service_pb2.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ServerLiveResponse:
        return service_pb2.ServerLiveResponse(live=True)

    async def ModelInfer(
        self, request: service_pb2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelInferResponse:
        rows = request.inputs[0].shape[0] if request.inputs else 1
        response = service_pb2.ModelInferResponse(
            model_name=request.model_name, model_version="1", id=request.id
        )
        output = response.outputs.add(name="prediction", datatype="FP32")
        output.shape.extend([rows, 1])
        response.raw_output_contents.append(np.zeros(rows, np.float32).tobytes())
        return response


_GatewayBase = unbuilt(
    gateway_pb2_grpc.GatewayServiceServicer,
    gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"],
    "the relay answers Predict only",
)


class RelayServicer(_GatewayBase):  # type: ignore[valid-type,misc]
    def __init__(self, floor: service_pb2_grpc.GRPCInferenceServiceStub) -> None:
        self._floor = floor

    async def Predict(
        self, request: gateway_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PredictResponse:
        rows = len(request.entity_ids) or len(request.rows)
        infer = service_pb2.ModelInferRequest(model_name="floor")
        tensor = infer.inputs.add(name="features", datatype="FP32")
        tensor.shape.extend([rows, 1])
        infer.raw_input_contents.append(np.zeros(rows, np.float32).tobytes())
        if request.entity_ids:
            await self._floor.ModelInfer(infer, timeout=30)
        await self._floor.ModelInfer(infer, timeout=30)
        return gateway_pb2.PredictResponse(
            predictions=[gateway_pb2.Prediction(value=0.0) for _ in range(rows)]
        )


async def serve(port: int, relay_to: str) -> None:
    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(ZerosServicer(), server)
    if relay_to:
        channel = grpc.aio.insecure_channel(relay_to)
        relay = RelayServicer(service_pb2_grpc.GRPCInferenceServiceStub(channel))
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server(relay, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    # The services' default loop, so the floor is theirs too.
    services_loop = ServiceSettings.model_fields["event_loop"].default
    with asyncio.Runner(loop_factory=loop_factory(services_loop)) as runner:
        runner.run(serve(int(os.environ["FLOOR_PORT"]), os.environ.get("FLOOR_RELAY_TO", "")))
