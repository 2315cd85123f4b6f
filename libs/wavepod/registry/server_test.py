"""How the wavepod/mlflow image starts MLflow (it runs for real in the image test,
tests/integration/mlflow_image_test.py, and in every test that signs in to MLflow)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from wavepod.registry import server
from wavepod.registry.server import MlflowServerSettings, server_command

SECRETS = {"database": "pg-8c1e", "admin": "admin-03fd", "key": "flask-77a2"}


def _files(directory: Path) -> dict[str, Path]:
    for name, value in SECRETS.items():
        (directory / name).write_text(value + "\n")
    return {name: directory / name for name in SECRETS}


def test_settings_come_from_the_environment_and_name_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    with pytest.raises(ValidationError) as missing:
        MlflowServerSettings()  # type: ignore[call-arg]
    assert {e["loc"][0] for e in missing.value.errors()} == {
        "admin_password_file",
        "secret_key_file",
    }
    monkeypatch.setenv("WAVEPOD_MLFLOW_ADMIN_PASSWORD_FILE", str(files["admin"]))
    monkeypatch.setenv("WAVEPOD_MLFLOW_SECRET_KEY_FILE", str(files["key"]))
    monkeypatch.setenv("WAVEPOD_MLFLOW_PORT", "5123")
    settings = MlflowServerSettings()  # type: ignore[call-arg]
    assert (settings.port, settings.admin_password_file) == (5123, files["admin"])


def test_secrets_reach_mlflow_by_environment_never_its_command_line(tmp_path: Path) -> None:
    files = _files(tmp_path)
    store = "postgresql+psycopg://mlflow@postgres:5432"
    settings = MlflowServerSettings(
        host="0.0.0.0",
        port=5000,
        backend_store_uri=f"{store}/mlflow",
        auth_database_uri=f"{store}/mlflow_auth",
        database_password_file=files["database"],
        artifacts_destination="s3://mlflow",
        admin_password_file=files["admin"],
        secret_key_file=files["key"],
        allowed_hosts="mlflow:5000",
    )
    command, env = server_command(settings, tmp_path)

    assert command[1:] == [
        *("-m", "mlflow", "server", "--app-name", "basic-auth"),
        *("--host", "0.0.0.0", "--port", "5000", "--workers", "2"),
    ]
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"{store}/mlflow"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://mlflow"
    assert env["MLFLOW_SERVER_ALLOWED_HOSTS"] == "mlflow:5000"
    # Passwords from their files, stripped; libpq reads PGPASSWORD for both stores.
    assert env["PGPASSWORD"] == SECRETS["database"]
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == SECRETS["admin"]
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == SECRETS["key"]
    config = Path(env["MLFLOW_AUTH_CONFIG_PATH"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    text = config.read_text()
    assert f"database_uri = {store}/mlflow_auth" in text
    assert "default_permission = NO_PERMISSIONS" in text
    for value in SECRETS.values():
        assert value not in " ".join(command)
        assert value not in text


def test_serve_takes_settings_not_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        server.main(["serve", "--port", "5000"])
    assert refused.value.code == 2
    # What follows a command is the command's: `provision --help` is provision's help.
    with pytest.raises(SystemExit) as helped:
        server.main(["provision", "--help"])
    assert helped.value.code == 0
    assert "--tracking-uri" in capsys.readouterr().out
