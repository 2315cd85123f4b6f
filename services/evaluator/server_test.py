from pathlib import Path

from evaluator.server import app
from evaluator.settings import EvaluatorSettings
from wavepod.runtime.testing.conformance import check_service_process


def test_evaluator_serves_its_contract_and_drains_on_sigterm(tmp_path: Path) -> None:
    settings = EvaluatorSettings.model_validate({"audit_log": str(tmp_path / "audit.jsonl")})
    check_service_process("evaluator.server", app(settings))
