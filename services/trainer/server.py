"""The trainer service process: `./pants run services/trainer:server`.

Settings come from WAVEPOD_TRAINER_* environment variables (wavepod.runtime.settings).
"""

from wavepod.runtime import Registration, ServiceApp, run
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc

DEFAULT_PORT = 50053
NOT_BUILT = "training runs tracked in MLflow arrive with the model-plane milestone (issue #5)"


def app() -> ServiceApp:
    return ServiceApp(
        name="trainer",
        registrations=[
            Registration.unbuilt(trainer_pb2, trainer_pb2_grpc, "TrainerService", NOT_BUILT)
        ],
    )


if __name__ == "__main__":
    run("trainer", lambda _settings: app(), port=DEFAULT_PORT)
