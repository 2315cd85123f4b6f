from pathlib import Path

from feature.server import app
from feature.settings import FeatureSettings
from wavepod.runtime.testing.conformance import check_service_process


def test_feature_serves_its_contract_and_drains_on_sigterm(tmp_path: Path) -> None:
    settings = {"store_root": str(tmp_path / "features"), "lake": str(tmp_path / "lake")}
    check_service_process("feature.server", app(FeatureSettings.model_validate(settings)))
