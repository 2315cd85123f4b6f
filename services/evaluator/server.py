"""The evaluator service process: `./pants run services/evaluator:server`.

Settings come from WAVEPOD_EVALUATOR_* environment variables (wavepod.runtime.settings).
"""

from wavepod.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run

DEFAULT_PORT = 50054
NOT_BUILT = (
    "promotion gates, online metrics and drift arrive with the evaluator milestone (issue #7)"
)


def app() -> ServiceApp:
    return ServiceApp(
        name="evaluator",
        registrations=[
            Registration.unbuilt(evaluator_pb2, evaluator_pb2_grpc, "EvaluatorService", NOT_BUILT)
        ],
    )


if __name__ == "__main__":
    run("evaluator", lambda _settings: app(), port=DEFAULT_PORT)
