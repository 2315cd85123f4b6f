"""The gateway service process: `./pants run services/gateway:server`.

The public API: Predict and PredictStream over models served by the inference service
(or a Triton), with features from the feature service's online store. Settings come
from WAVEPOD_GATEWAY_* (gateway/settings.py); auth from WAVEPOD_GATEWAY_AUTH_TOKENS_FILE.
"""

import tritonclient.grpc.aio as triton

from gateway.aliases import AliasSource, MlflowAliases, NoRegistry
from gateway.backends import FeatureBackend, InferenceBackend
from gateway.breaker import CircuitBreaker
from gateway.catalog import ModelCatalog
from gateway.feedback import FeedbackForwarder
from gateway.ingest_client import IngestClient
from gateway.limits import RateLimiter
from gateway.log_shipper import LogShipper
from gateway.metrics import PredictionMetrics
from gateway.prediction_log import PredictionLog
from gateway.predictor import Predictor
from gateway.routing import Router, RoutingPolicy
from gateway.servicer import GatewayServicer
from gateway.settings import GatewaySettings
from gateway.slo import Slo
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.auth import method_roles, rpc_paths
from wavepod.runtime.channels import connect
from wavepod.runtime.tls import channel_credentials

DEFAULT_PORT = 50050
# A backend that restarts is found again within about a second (gRPC's default backoff
# grows to two minutes); until then calls fail fast with UNAVAILABLE.
RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
_SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
METHOD_ROLES = method_roles(
    _SERVICE,
    {
        "Predict": {"predict"},
        "PredictStream": {"predict"},
        "SubmitFeedback": {"feedback"},
        "GetRouting": {"admin"},
        "SetRouting": {"admin"},
    },
)


def router(settings: GatewaySettings) -> Router:
    aliases: AliasSource = NoRegistry()
    if settings.mlflow_tracking_uri:
        aliases = MlflowAliases(
            settings.mlflow_tracking_uri,
            settings.mlflow_authorization(),
            settings.aliases_refresh_seconds,
            settings.champion_alias,
            settings.challenger_alias,
        )
    slo = Slo(
        settings.canary_max_error_rate,
        settings.canary_max_p95_ms,
        settings.canary_window_seconds,
        settings.canary_min_calls,
    )
    policy = RoutingPolicy(settings.canary_share, settings.shadow)
    return Router(aliases, policy, slo, AuditLog(settings.audit_log))


def app(settings: GatewaySettings) -> ServiceApp:
    token = settings.outgoing_token()
    headers = {"authorization": f"Bearer {token}"} if token else None
    log = PredictionLog(
        settings.prediction_log_dir,
        settings.prediction_log_flush_rows,
        settings.prediction_log_flush_seconds,
    )
    servicer = GatewayServicer(RateLimiter(settings.rate_limit_per_second), settings.stream_window)
    routes = router(settings)  # reads the audit log now: a broken chain stops the start
    closers = []
    shippers: list[LogShipper] = []

    async def connect_backends() -> bool:
        # gRPC aio clients bind to the running loop: create them inside the server.
        inference_client = triton.InferenceServerClient(
            settings.inference, creds=channel_credentials(settings), channel_args=list(RECONNECT)
        )
        features_channel = connect(settings.feature_service, settings, options=RECONNECT)
        inference = InferenceBackend(
            inference_client,
            CircuitBreaker("inference", settings.breaker_failures, settings.breaker_open_seconds),
            settings.inference_timeout_seconds,
            headers,
            settings.micro_batch_rows,
            settings.micro_batch_delay_us / 1e6,
        )
        features = FeatureBackend(
            features_channel,
            CircuitBreaker(
                "feature service", settings.breaker_failures, settings.breaker_open_seconds
            ),
            settings.outgoing_timeout_seconds,
            settings.micro_batch_rows,
            settings.micro_batch_delay_us / 1e6,
        )
        servicer.predictor = Predictor(
            ModelCatalog(inference_client, settings.model_refresh_seconds, headers),
            features,
            inference,
            log,
            settings.default_model,
            settings.max_rows,
            settings.range_slack,
            routes,
            PredictionMetrics(settings.cost_per_hour, settings.cost_per_1k_forecast),
        )
        ingest_channel = connect(settings.ingest, settings, options=RECONNECT)
        servicer.feedback = FeedbackForwarder(
            IngestClient(ingest_channel, settings.outgoing_timeout_seconds)
        )
        if settings.prediction_log_to_lake:
            shipper = LogShipper(
                settings.prediction_log_dir,
                IngestClient(ingest_channel, settings.prediction_log_ship_timeout_seconds),
                settings.prediction_log_ship_seconds,
            )
            shipper.start()
            shippers.append(shipper)
        closers.extend(
            [
                inference.close,
                features.close,
                inference_client.close,
                features_channel.close,
                ingest_channel.close,
            ]
        )
        return True

    async def close() -> None:
        # After the drain: every answered request's record (and, once shadow scoring in
        # flight ends, every shadow record) is in the log's buffer.
        if servicer.predictor is not None:
            await servicer.predictor.close()
        await log.close()
        for shipper in shippers:  # before the ingest channel closes
            await shipper.close()
        for closer in closers:
            await closer()

    return ServiceApp(
        name="gateway",
        registrations=[Registration.of(gateway_pb2, gateway_pb2_grpc, "GatewayService", servicer)],
        readiness=connect_backends,
        flush_hooks=[close],
        method_roles=METHOD_ROLES,
        self_audited_methods=rpc_paths(_SERVICE, ["SetRouting"]),  # the router records it
    )


if __name__ == "__main__":
    run("gateway", app, GatewaySettings, port=DEFAULT_PORT)
