"""The evaluator service process: `./pants run services/evaluator:server`.

Evaluates registered model versions against the champion, moves the champion alias
(Promote / Rollback, role `admin`, audited) after publishing to the inference service, and
reports a model's health in production (online metrics, drift) from the lake.
Settings come from WAVEPOD_EVALUATOR_* (evaluator/settings.py).
"""

import grpc

from evaluator.evaluation import Evaluator
from evaluator.health import HealthCheck
from evaluator.promotion import Promoter
from evaluator.servicer import EvaluatorServicer
from evaluator.settings import EvaluatorSettings
from wavepod.common.v1 import refs_pb2
from wavepod.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from wavepod.inference.v1 import inference_pb2, inference_pb2_grpc
from wavepod.lake import open_lake
from wavepod.runtime import Registration, ServiceApp, run
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.channels import connect
from wavepod.runtime.status import FailedPrecondition, Unavailable

DEFAULT_PORT = 50054
SERVICE = "/wavepod.evaluator.v1.EvaluatorService/"
METHOD_ROLES = {
    f"{SERVICE}Evaluate": frozenset({"evaluate", "admin"}),
    f"{SERVICE}Report": frozenset({"evaluate", "admin"}),
    f"{SERVICE}GetModelHealth": frozenset({"evaluate", "admin"}),
    f"{SERVICE}Promote": frozenset({"admin"}),
    f"{SERVICE}Rollback": frozenset({"admin"}),
}


def app(settings: EvaluatorSettings) -> ServiceApp:
    channels: list[grpc.aio.Channel] = []

    async def publish(name: str, version: str) -> None:
        # aio channels bind to the running loop: made on first use, inside the server.
        if not channels:
            channels.append(connect(settings.inference, settings))
        stub = inference_pb2_grpc.InferenceAdminServiceStub(channels[0])
        try:
            await stub.PublishModel(
                inference_pb2.PublishModelRequest(
                    model=refs_pb2.ModelRef(name=name, version=version)
                ),
                timeout=settings.publish_timeout_seconds,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(
                    f"inference (publish {name} {version}): {error.details()}"
                ) from None
            raise FailedPrecondition(
                f"inference refused to publish {name} {version}: {error.details()}"
            ) from None

    async def close() -> None:
        for channel in channels:
            await channel.close()

    subgroups = tuple(s.strip() for s in settings.subgroups.split(",") if s.strip())
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    lake = open_lake(settings.lake, token, settings.outgoing_timeout_seconds)
    servicer = EvaluatorServicer(
        Evaluator(settings.mlflow_tracking_uri, subgroups),
        Promoter(settings.mlflow_tracking_uri, publish, AuditLog(settings.audit_log)),
        HealthCheck(settings.mlflow_tracking_uri, lake, subgroups, settings.health_policy()),
        settings.gate_policy(),
    )
    return ServiceApp(
        name="evaluator",
        registrations=[
            Registration.of(evaluator_pb2, evaluator_pb2_grpc, "EvaluatorService", servicer)
        ],
        flush_hooks=[close],
        method_roles=METHOD_ROLES,
    )


if __name__ == "__main__":
    run("evaluator", app, EvaluatorSettings, port=DEFAULT_PORT)
