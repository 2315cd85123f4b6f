"""The gateway service process: `./pants run services/gateway:server`.

Settings come from WAVEPOD_GATEWAY_* environment variables (wavepod.runtime.settings).
"""

from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime import Registration, ServiceApp, run

DEFAULT_PORT = 50050
NOT_BUILT = (
    "predictions, feedback intake, auth and routing arrive with the gateway milestone (issue #6)"
)


def app() -> ServiceApp:
    return ServiceApp(
        name="gateway",
        registrations=[
            Registration.unbuilt(gateway_pb2, gateway_pb2_grpc, "GatewayService", NOT_BUILT)
        ],
    )


if __name__ == "__main__":
    run("gateway", lambda _settings: app(), port=DEFAULT_PORT)
