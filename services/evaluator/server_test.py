from evaluator.server import app
from wavepod.runtime.testing.conformance import check_service_process


def test_evaluator_serves_its_contract_and_drains_on_sigterm() -> None:
    check_service_process("evaluator.server", app())
