from pathlib import Path

from ingest.server import app
from ingest.settings import IngestSettings
from wavepod.runtime.testing.conformance import check_service_process


def test_ingest_serves_its_contract_and_drains_on_sigterm(tmp_path: Path) -> None:
    # The in-process app only lends its descriptors; give it its own lake.
    check_service_process(
        "ingest.server", app(IngestSettings.model_validate({"lake_root": str(tmp_path)}))
    )
