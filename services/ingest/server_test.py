from ingest.server import app
from wavepod.runtime.testing.conformance import check_service_process


def test_ingest_serves_its_contract_and_drains_on_sigterm() -> None:
    check_service_process("ingest.server", app())
