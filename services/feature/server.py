"""The feature service process: `./pants run services/feature:server`.

Settings come from WAVEPOD_FEATURE_* environment variables (wavepod.runtime.settings).
"""

from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run

DEFAULT_PORT = 50052
NOT_BUILT = (
    "feature sets, training sets and the online store arrive with the feature milestone (issue #4)"
)


def app() -> ServiceApp:
    return ServiceApp(
        name="feature",
        registrations=[
            Registration.unbuilt(feature_pb2, feature_pb2_grpc, "FeatureService", NOT_BUILT)
        ],
    )


if __name__ == "__main__":
    run("feature", lambda _settings: app(), port=DEFAULT_PORT)
