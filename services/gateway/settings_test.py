"""How the gateway presents itself to MLflow's REST API (it has no MLflow client)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings


def test_the_gateway_signs_in_to_mlflow_as_its_user_or_with_a_bearer_token(
    tmp_path: Path,
) -> None:
    password = tmp_path / "password"
    password.write_text("gateway-password\n")
    user = {"mlflow_username": "gateway", "mlflow_password_file": password}
    header = GatewaySettings.model_validate(user).mlflow_authorization()
    assert header == "Basic " + base64.b64encode(b"gateway:gateway-password").decode()
    token = GatewaySettings.model_validate({"mlflow_token": "t0ken"})
    assert token.mlflow_authorization() == "Bearer t0ken"
    assert GatewaySettings.model_validate({}).mlflow_authorization() is None
    with pytest.raises(ValidationError, match="set one or neither"):
        GatewaySettings.model_validate({**user, "mlflow_token": "t0ken"})
