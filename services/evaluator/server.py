"""The evaluator service process: `./pants run services/evaluator:server`.

Evaluates registered model versions against the champion, moves the champion alias
(Promote / Rollback, role `admin`, audited) after publishing to the inference service, and
reports a model's health in production (online metrics, drift) from the lake; the retrain
loop (Retrain, or every RETRAIN_CHECK_SECONDS for RETRAIN_MODELS) acts on it.
Settings come from WAVEPOD_EVALUATOR_* (evaluator/settings.py).
"""

import asyncio
from datetime import timedelta

import grpc

from evaluator.evaluation import Evaluator
from evaluator.health import HealthCheck
from evaluator.promotion import Promoter
from evaluator.retrain import RetrainLoop
from evaluator.servicer import EvaluatorServicer
from evaluator.settings import EvaluatorSettings
from wavepod.common.v1 import refs_pb2
from wavepod.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from wavepod.inference.v1 import inference_pb2, inference_pb2_grpc
from wavepod.lake import open_lake
from wavepod.runtime import Registration, ServiceApp, run
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.auth import method_roles, rpc_paths
from wavepod.runtime.channels import connect
from wavepod.runtime.status import FailedPrecondition, Unavailable

DEFAULT_PORT = 50054
_SERVICE = evaluator_pb2.DESCRIPTOR.services_by_name["EvaluatorService"]
_ADMIN = ("Promote", "Rollback", "Retrain")  # each records its own actions in the audit log
METHOD_ROLES = method_roles(
    _SERVICE,
    {
        **dict.fromkeys(("Evaluate", "Report", "GetModelHealth"), {"evaluate", "admin"}),
        **dict.fromkeys(_ADMIN, {"admin"}),
    },
)


def app(settings: EvaluatorSettings) -> ServiceApp:
    channels: dict[str, grpc.aio.Channel] = {}
    loops: list[asyncio.Task[None]] = []

    def channel(target: str) -> grpc.aio.Channel:
        # aio channels bind to the running loop: made on first use, inside the server.
        if target not in channels:
            channels[target] = connect(target, settings)
        return channels[target]

    async def publish(name: str, version: str) -> None:
        stub = inference_pb2_grpc.InferenceAdminServiceStub(channel(settings.inference))
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
        for task in loops:
            task.cancel()
        for open_channel in channels.values():
            await open_channel.close()

    subgroups = tuple(s.strip() for s in settings.subgroups.split(",") if s.strip())
    token = settings.outgoing_token()
    lake = open_lake(
        settings.lake, token, settings.outgoing_timeout_seconds, settings.s3_endpoint_url
    )
    audit = AuditLog(settings.audit_log)
    evaluator = Evaluator(settings.mlflow_tracking_uri, subgroups)
    promoter = Promoter(settings.mlflow_tracking_uri, publish, audit)
    health = HealthCheck(settings.mlflow_tracking_uri, lake, subgroups, settings.health_policy())
    retrain = RetrainLoop(
        health,
        evaluator,
        promoter,
        lambda: channel(settings.trainer),
        settings.gate_policy(),
        timedelta(hours=settings.monitor_window_hours),
        audit,
        settings.retrain_run_timeout_seconds,
    )
    servicer = EvaluatorServicer(evaluator, promoter, health, retrain, settings.gate_policy())
    watched = [m.strip() for m in settings.retrain_models.split(",") if m.strip()]

    async def start_loop() -> bool:
        if watched and settings.retrain_check_seconds > 0:
            loops.append(
                asyncio.create_task(retrain.watch(watched, settings.retrain_check_seconds))
            )
        return True

    return ServiceApp(
        name="evaluator",
        registrations=[
            Registration.of(evaluator_pb2, evaluator_pb2_grpc, "EvaluatorService", servicer)
        ],
        readiness=start_loop,
        flush_hooks=[close],
        method_roles=METHOD_ROLES,
        self_audited_methods=rpc_paths(_SERVICE, _ADMIN),
    )


if __name__ == "__main__":
    run("evaluator", app, EvaluatorSettings, port=DEFAULT_PORT)
