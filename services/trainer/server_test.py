from trainer.server import app
from trainer.settings import TrainerSettings
from wavepod.runtime.testing.conformance import check_service_process


def test_trainer_serves_its_contract_and_drains_on_sigterm() -> None:
    check_service_process("trainer.server", app(TrainerSettings.model_validate({})))
