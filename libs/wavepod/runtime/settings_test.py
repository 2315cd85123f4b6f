from __future__ import annotations

import os
from pathlib import Path

import pytest

from wavepod.runtime.settings import (
    RegistryClientSettings,
    ServiceSettings,
    env_prefix,
    load_settings,
)


def test_environment_overrides_service_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVEPOD_INGEST_DRAIN_SECONDS", "2.5")
    monkeypatch.setenv("WAVEPOD_GATEWAY_PORT", "9999")  # another service's prefix
    settings = load_settings("ingest", ServiceSettings, port=50051, drain_seconds=30)
    assert settings.port == 50051
    assert settings.drain_seconds == 2.5
    assert env_prefix("ingest") == "WAVEPOD_INGEST_"


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVEPOD_INGEST_PORT", "70000")
    with pytest.raises(ValueError, match="port"):
        load_settings("ingest", ServiceSettings)


def test_secrets_do_not_leak_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVEPOD_GATEWAY_AUTH_TOKEN", "s3cr3t")
    settings = load_settings("gateway", ServiceSettings)
    assert settings.auth_token is not None
    assert settings.auth_token.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(settings)
    assert settings.outgoing_token() == "s3cr3t"


def test_the_outgoing_token_can_come_from_a_secret_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "gateway_token"
    secret.write_text("fr0m-f1le\n")
    monkeypatch.setenv("WAVEPOD_GATEWAY_AUTH_TOKEN_FILE", str(secret))
    settings = load_settings("gateway", ServiceSettings)
    assert settings.outgoing_token() == "fr0m-f1le"
    assert "fr0m-f1le" not in repr(settings)
    assert load_settings("ingest", ServiceSettings).outgoing_token() is None
    monkeypatch.setenv("WAVEPOD_GATEWAY_AUTH_TOKEN", "s3cr3t")
    with pytest.raises(ValueError, match="auth_token and auth_token_file"):
        load_settings("gateway", ServiceSettings)


def test_tls_files_must_pair_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVEPOD_GATEWAY_TLS_CERT_FILE", "/etc/wavepod/gateway.crt")
    with pytest.raises(ValueError, match="tls_cert_file and tls_key_file"):
        load_settings("gateway", ServiceSettings)
    monkeypatch.delenv("WAVEPOD_GATEWAY_TLS_CERT_FILE")
    monkeypatch.setenv("WAVEPOD_GATEWAY_TLS_CLIENT_CA_FILE", "/etc/wavepod/ca.crt")
    with pytest.raises(ValueError, match="tls_client_ca_file needs"):
        load_settings("gateway", ServiceSettings)


def test_a_service_signs_in_to_mlflow_as_its_own_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("WAVEPOD_TRAINER_MLFLOW_USERNAME", "trainer")
    with pytest.raises(ValueError, match="mlflow_username and mlflow_password_file"):
        load_settings("trainer", RegistryClientSettings)
    password = tmp_path / "password"
    password.write_text("")
    monkeypatch.setenv("WAVEPOD_TRAINER_MLFLOW_PASSWORD_FILE", str(password))
    with pytest.raises(ValueError, match="is empty"):
        load_settings("trainer", RegistryClientSettings).sign_in_to_mlflow()
    password.write_text("its-password\n")
    settings = load_settings("trainer", RegistryClientSettings)
    assert "its-password" not in repr(settings)
    settings.sign_in_to_mlflow()
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "trainer"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "its-password"
