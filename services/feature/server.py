"""The feature service process: `./pants run services/feature:server`.

Settings come from WAVEPOD_FEATURE_* environment variables (feature/settings.py).
"""

from datetime import timedelta

from feature.engine import FeatureEngine
from feature.online.store import open_online_store
from feature.servicer import FeatureServicer
from feature.sets import builtin_registry
from feature.settings import FeatureSettings
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.lake import open_lake
from wavepod.runtime import Registration, ServiceApp, run
from wavepod.runtime.auth import method_roles, rpc_paths
from wavepod.runtime.secrets import optional_secret

DEFAULT_PORT = 50052
# The gateway reads online features, the trainer builds training sets, an operator
# (admin) materializes.
_SERVICE = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]
METHOD_ROLES = method_roles(
    _SERVICE,
    {
        "ListFeatureSets": {"online", "training", "admin"},
        "GetOnlineFeatures": {"online", "admin"},
        "BuildTrainingSet": {"training", "admin"},
        "GetFeatureStats": {"training", "admin"},
        "Materialize": {"admin"},
    },
)


def app(settings: FeatureSettings) -> ServiceApp:
    online = open_online_store(
        settings.online_store,
        optional_secret(settings.online_store_password_ref, "online_store_password_ref"),
    )
    engine = FeatureEngine(
        builtin_registry(),
        open_lake(
            settings.lake,
            settings.outgoing_token(),
            settings.outgoing_timeout_seconds,
            settings.s3_endpoint_url,
        ),
        settings.store_root,
        online,
        online_max_age=(
            timedelta(days=settings.online_max_age_days) if settings.online_max_age_days else None
        ),
        history_until=settings.history_until,
    )
    return ServiceApp(
        name="feature",
        registrations=[
            Registration.of(
                feature_pb2, feature_pb2_grpc, "FeatureService", FeatureServicer(engine)
            )
        ],
        flush_hooks=[online.close],
        method_roles=METHOD_ROLES,
        audited_methods=rpc_paths(_SERVICE, ["Materialize"]),
    )


if __name__ == "__main__":
    run("feature", app, FeatureSettings, port=DEFAULT_PORT)
