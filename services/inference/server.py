"""The inference service process: `./pants run services/inference:server`.

Speaks the KServe v2 / Triton gRPC protocol (settings: WAVEPOD_INFERENCE_*); the
default port is Triton's gRPC port so clients switch between the two unchanged. Every
model in the repository is loaded at start-up (Triton's default control mode); the
repository RPCs load and unload at run time, and PublishModel adds MLflow versions.
"""

from tritonclient.grpc import service_pb2, service_pb2_grpc

from inference.admin import InferenceAdminServicer
from inference.publish import BatchingChoice
from inference.repository import ModelRepository
from inference.serving import ModelServer, ServingOptions
from inference.settings import InferenceSettings
from inference.v2_protocol import InferenceServicer
from wavepod.inference.v1 import inference_pb2, inference_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run

DEFAULT_PORT = 8001
VERSION = "0.2.0"


def app(settings: InferenceSettings) -> ServiceApp:
    models = ModelServer(
        ModelRepository(settings.model_repository),
        ServingOptions(
            prefer_provider=settings.execution_provider,
            intra_op_threads=settings.intra_op_threads,
            dynamic_batching=settings.dynamic_batching,
        ),
    )
    started = False

    async def load_repository() -> bool:
        nonlocal started
        await models.load_all()
        started = True
        return True

    admin = InferenceAdminServicer(
        models,
        settings.mlflow_tracking_uri,
        BatchingChoice(settings.publish_max_batch_size, settings.publish_max_queue_delay_us),
    )
    return ServiceApp(
        name="inference",
        version=VERSION,
        registrations=[
            Registration.of(
                service_pb2,
                service_pb2_grpc,
                "GRPCInferenceService",
                InferenceServicer(VERSION, models, is_ready=lambda: started),
            ),
            Registration.of(inference_pb2, inference_pb2_grpc, "InferenceAdminService", admin),
        ],
        readiness=load_repository,
        flush_hooks=[models.close],
    )


if __name__ == "__main__":
    run("inference", app, InferenceSettings, port=DEFAULT_PORT)
