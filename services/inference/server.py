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
from wavepod.runtime.auth import method_roles, rpc_paths

DEFAULT_PORT = 8001
VERSION = "0.2.0"
# The gateway infers and reads model state (role infer); the evaluator publishes and
# changes what is loaded (publish); Triton's own admin RPCs (shared memory, tracing,
# logging) are an operator's (admin).
_READS_MODELS = {
    "ServerLive", "ServerReady", "ServerMetadata", "ModelReady", "ModelMetadata", "ModelConfig",
    "ModelStatistics", "RepositoryIndex", "ModelInfer", "ModelStreamInfer",
}  # fmt: skip
_CHANGES_MODELS = {"RepositoryModelLoad", "RepositoryModelUnload"}


def _triton_roles(method: str) -> set[str]:
    if method in _READS_MODELS:
        return {"infer", "publish", "admin"}
    if method in _CHANGES_MODELS:
        return {"publish", "admin"}
    return {"admin"}


_TRITON = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
_ADMIN = inference_pb2.DESCRIPTOR.services_by_name["InferenceAdminService"]
METHOD_ROLES = {
    **method_roles(_TRITON, {name: _triton_roles(name) for name in _TRITON.methods_by_name}),
    **method_roles(_ADMIN, {"PublishModel": {"publish", "admin"}}),
}
# Audited: what changes what is served, or how the server runs.
_CHANGES_SERVER = {
    "SystemSharedMemoryRegister", "SystemSharedMemoryUnregister", "CudaSharedMemoryRegister",
    "CudaSharedMemoryUnregister", "TraceSetting", "LogSettings",
}  # fmt: skip
AUDITED = rpc_paths(_TRITON, _CHANGES_MODELS | _CHANGES_SERVER) | rpc_paths(
    _ADMIN, ["PublishModel"]
)


def app(settings: InferenceSettings) -> ServiceApp:
    models = ModelServer(
        ModelRepository(settings.model_repository),
        ServingOptions(
            prefer_provider=settings.execution_provider,
            intra_op_threads=settings.intra_op_threads,
            dynamic_batching=settings.dynamic_batching,
            inline_compute_us=settings.inline_compute_us,
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
                InferenceServicer(VERSION, models, lambda: started, settings.stream_window),
            ),
            Registration.of(inference_pb2, inference_pb2_grpc, "InferenceAdminService", admin),
        ],
        readiness=load_repository,
        flush_hooks=[models.close],
        method_roles=METHOD_ROLES,
        audited_methods=AUDITED,
    )


if __name__ == "__main__":
    run("inference", app, InferenceSettings, port=DEFAULT_PORT)
