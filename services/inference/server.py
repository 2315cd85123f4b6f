"""The inference service process: `./pants run services/inference:server`.

Speaks the KServe v2 / Triton gRPC protocol (settings: WAVEPOD_INFERENCE_*); the
default port is Triton's gRPC port so clients switch between the two unchanged.
"""

from tritonclient.grpc import service_pb2, service_pb2_grpc

from inference.v2_protocol import InferenceServicer
from wavepod.inference.v1 import inference_pb2, inference_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run

DEFAULT_PORT = 8001
VERSION = "0.1.0"
NOT_BUILT = "publishing MLflow models to the repository arrives with issue #5"


def app() -> ServiceApp:
    v2 = InferenceServicer(VERSION, is_ready=lambda: True)
    return ServiceApp(
        name="inference",
        version=VERSION,
        registrations=[
            Registration.of(service_pb2, service_pb2_grpc, "GRPCInferenceService", v2),
            Registration.unbuilt(
                inference_pb2, inference_pb2_grpc, "InferenceAdminService", NOT_BUILT
            ),
        ],
    )


if __name__ == "__main__":
    run("inference", lambda _settings: app(), port=DEFAULT_PORT)
