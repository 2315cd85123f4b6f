from gateway.server import app
from gateway.settings import GatewaySettings
from wavepod.runtime.testing.conformance import check_service_process


def test_gateway_serves_its_contract_and_drains_on_sigterm() -> None:
    check_service_process("gateway.server", app(GatewaySettings.model_validate({})))
