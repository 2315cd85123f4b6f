"""Typed service settings read from environment variables, one prefix per service.

Every service reads `WAVEPOD_<SERVICE>_<FIELD>` (e.g. `WAVEPOD_GATEWAY_PORT`); services
that need more fields subclass `ServiceSettings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound="ServiceSettings")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 in containers.")
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port (tests).")
    drain_seconds: float = Field(
        10.0, gt=0, description="On SIGTERM, in-flight calls get this long to finish."
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="uvloop (libuv) spends fewer microseconds per gRPC call than asyncio's"
        " own loop; asyncio is the fallback.",
    )
    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = Field(
        None, description="OTLP/gRPC collector, e.g. http://127.0.0.1:4317; unset: no export."
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Prometheus /metrics on host:port; unset: none."
    )
    outgoing_timeout_seconds: float = Field(
        5.0, gt=0, description="Deadline for outgoing calls that set none."
    )
    auth_tokens_file: Path | None = Field(
        None, description="File of `sha256-of-token role[,role]` lines; unset: auth off."
    )
    auth_token: SecretStr | None = Field(
        None, description="Bearer token this service presents on outgoing calls."
    )
    auth_token_file: Path | None = Field(
        None, description="File holding that token instead (a Compose or Kubernetes secret)."
    )
    audit_log: Path | None = Field(
        None,
        description="Append-only log of admin RPCs; unset: .wavepod/<service>-audit.jsonl.",
    )
    audit_refusal_window_seconds: float = Field(
        60.0,
        gt=0,
        description="Identical refused calls (caller, RPC, code) after the first are counted"
        " and written as one entry per window.",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate chain: serve TLS (with tls_key_file)."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None, description="Require client certificates signed by this CA (mutual TLS)."
    )
    tls_ca_file: Path | None = Field(
        None, description="CA of the services this one calls; set: outgoing calls use TLS."
    )

    @model_validator(mode="after")
    def _tls_files_pair_up(self) -> ServiceSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        if self.auth_token is not None and self.auth_token_file is not None:
            raise ValueError("auth_token and auth_token_file: set one or neither")
        return self

    def outgoing_token(self) -> str | None:
        """The bearer token for this service's outgoing calls, if it has one."""
        if self.auth_token_file is not None:
            token = self.auth_token_file.read_text().strip()
            if not token:
                raise ValueError(f"auth_token_file {self.auth_token_file} is empty")
            return token
        return self.auth_token.get_secret_value() if self.auth_token else None


class RegistryClientSettings(ServiceSettings):
    """Settings of a service that calls MLflow, signing in as its own MLflow user."""

    mlflow_username: str = Field(
        "",
        description="MLflow user this service signs in as (basic auth); unset: MLflow's own"
        " MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD environment, if any.",
    )
    mlflow_password_file: Path | None = Field(
        None, description="File holding that user's password (a Compose or Kubernetes secret)."
    )

    @model_validator(mode="after")
    def _mlflow_user_has_a_password(self) -> RegistryClientSettings:
        if bool(self.mlflow_username) != (self.mlflow_password_file is not None):
            raise ValueError("mlflow_username and mlflow_password_file: set both or neither")
        return self

    def mlflow_credentials(self) -> tuple[str, str] | None:
        """(user, password) for MLflow, if this service has its own user."""
        if self.mlflow_password_file is None:
            return None
        password = self.mlflow_password_file.read_text().strip()
        if not password:
            raise ValueError(f"mlflow_password_file {self.mlflow_password_file} is empty")
        return self.mlflow_username, password

    def sign_in_to_mlflow(self) -> None:
        """MLflow's clients take basic-auth credentials from the environment only; a
        service process has one MLflow identity, so it sets them once at start."""
        credentials = self.mlflow_credentials()
        if credentials is not None:
            os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = (
                credentials
            )


def env_prefix(service: str) -> str:
    return f"WAVEPOD_{service.upper()}_"


def load_settings(service: str, settings_cls: type[S], **defaults: Any) -> S:
    """Reads `settings_cls` from the environment under the service's prefix.

    `defaults` are the service's own defaults (e.g. its well-known port); the
    environment overrides them.
    """
    prefix = env_prefix(service)
    from_env = settings_cls(_env_prefix=prefix)  # type: ignore[call-arg]
    explicit = from_env.model_fields_set
    merged = {k: v for k, v in defaults.items() if k not in explicit}
    return from_env.model_copy(update=merged) if merged else from_env
