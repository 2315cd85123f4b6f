"""The trainer service process: `./pants run services/trainer:server`.

Settings come from WAVEPOD_TRAINER_* environment variables (trainer/settings.py).
"""

import asyncio
import logging

from trainer.features import FeatureClient
from trainer.runner import Trainer
from trainer.runs import RunBoard
from trainer.servicer import TrainerServicer
from trainer.settings import TrainerSettings
from trainer.tracking import Tracking
from wavepod.runtime import Registration, ServiceApp, run
from wavepod.runtime.auth import method_roles, rpc_paths
from wavepod.runtime.status import ServiceError
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc

log = logging.getLogger(__name__)

DEFAULT_PORT = 50053
# The evaluator retrains; an operator (admin) trains by hand.
_SERVICE = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"]
METHOD_ROLES = method_roles(
    _SERVICE,
    dict.fromkeys(("StartRun", "WatchRun", "GetRun", "ListRuns"), {"train", "admin"}),
)


def app(settings: TrainerSettings) -> ServiceApp:
    token = settings.outgoing_token()
    features = FeatureClient(
        settings.feature_service,
        token,
        settings.outgoing_timeout_seconds,
        settings.build_timeout_seconds,
    )
    tracking = Tracking(settings.mlflow_tracking_uri)
    trainer = Trainer(
        features, tracking, settings.min_training_rows, settings.parity_tolerance, settings.git_sha
    )
    # asyncio primitives bind to the server's loop on first use (Python 3.10+).
    board = RunBoard(trainer, settings.concurrent_runs)

    async def recover() -> bool:
        try:
            failed = await asyncio.to_thread(tracking.fail_orphans)
        except ServiceError as error:  # MLflow down: StartRun will say so; serve anyway
            log.warning("could not check for orphaned runs", extra={"error": error.message})
        else:
            if failed:
                log.warning("marked orphaned runs failed", extra={"runs": failed})
        return True

    async def finish_runs() -> None:
        await board.wait_idle()
        features.close()

    return ServiceApp(
        name="trainer",
        registrations=[
            Registration.of(
                trainer_pb2, trainer_pb2_grpc, "TrainerService", TrainerServicer(board, tracking)
            )
        ],
        readiness=recover,
        flush_hooks=[finish_runs],
        method_roles=METHOD_ROLES,
        audited_methods=rpc_paths(_SERVICE, ["StartRun"]),
    )


if __name__ == "__main__":
    run("trainer", app, TrainerSettings, port=DEFAULT_PORT)
