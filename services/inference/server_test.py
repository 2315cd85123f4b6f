from pathlib import Path

from inference.server import app
from inference.settings import InferenceSettings
from wavepod.runtime.testing.conformance import check_service_process


def test_inference_serves_its_contract_and_drains_on_sigterm(tmp_path: Path) -> None:
    settings = {"model_repository": str(tmp_path / "models")}
    check_service_process("inference.server", app(InferenceSettings.model_validate(settings)))
