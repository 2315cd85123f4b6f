"""The protocol floor: a bare grpc.aio server that answers ModelInfer with zeros.

    python -m benchmarks.protocol_floor  # serves on 127.0.0.1:$FLOOR_PORT

No model, no checks, no batching, no interceptors: what one Python gRPC hop costs on
this machine with the same client (tritonclient) and the same messages. The serving
benchmarks measure it beside wavepod, so a figure reads against what Python gRPC itself
allows here, not only against a peer.
"""

from __future__ import annotations

import asyncio
import os

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc


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


async def serve(port: int) -> None:
    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(ZerosServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(os.environ["FLOOR_PORT"])))
