"""Gateway settings: WAVEPOD_GATEWAY_* (plus the common ones in wavepod.runtime.settings)."""

from __future__ import annotations

import base64
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from wavepod.runtime import RegistryClientSettings
from wavepod.runtime.streams import DEFAULT_STREAM_WINDOW


class GatewaySettings(RegistryClientSettings):
    inference: str = Field(
        "127.0.0.1:8001", description="KServe v2 endpoint: wavepod inference or a Triton."
    )
    feature_service: str = Field("127.0.0.1:50052", description="Online features (host:port).")
    ingest: str = Field("127.0.0.1:50051", description="Where feedback goes (host:port).")
    default_model: str = Field("refill", description="Model of requests that name none.")
    model_refresh_seconds: float = Field(
        2.0, gt=0, description="How long a model's signature and version are cached."
    )
    range_slack: float = Field(
        1.0,
        ge=0,
        description="Inline values may exceed the training range by this share of its width.",
    )
    max_rows: int = Field(1000, ge=1, description="Rows or entities per request.")
    micro_batch_rows: int = Field(
        64, ge=1, description="Rows (or entities) per coalesced inference (or feature) call."
    )
    micro_batch_delay_us: int = Field(
        0,
        ge=0,
        description="How long a request may wait for others to share its call; 0: requests"
        " that arrive while a call is in flight share the next one (no added latency).",
    )
    stream_window: int = Field(
        DEFAULT_STREAM_WINDOW,
        ge=1,
        description="Requests of one PredictStream computed at once, sharing micro-batches"
        " (answers stay in order); 1: one at a time.",
    )
    inference_timeout_seconds: float = Field(2.0, gt=0, description="Per inference call.")
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open it.")
    breaker_open_seconds: float = Field(2.0, gt=0, description="Fail fast this long, then probe.")
    rate_limit_per_second: float = Field(
        0.0, ge=0, description="Requests per second per caller (token bucket); 0: unlimited."
    )
    prediction_log_dir: Path = Field(
        Path(".wavepod/prediction-log"), description="Where prediction records are appended."
    )
    prediction_log_flush_rows: int = Field(1000, ge=1)
    prediction_log_flush_seconds: float = Field(1.0, gt=0)
    prediction_log_to_lake: bool = Field(
        True, description="Ship the spooled log into the lake through ingest (`prediction_log`)."
    )
    prediction_log_ship_seconds: float = Field(5.0, gt=0, description="How often it ships.")
    prediction_log_ship_timeout_seconds: float = Field(30.0, gt=0, description="Per spool file.")
    # Routing: champion/challenger from MLflow registry aliases.
    mlflow_tracking_uri: str = Field(
        "", description="MLflow server for aliases; empty: the newest version serving answers."
    )
    mlflow_token: SecretStr | None = Field(
        None, description="Bearer token for MLflow (instead of mlflow_username), if any."
    )
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    aliases_refresh_seconds: float = Field(5.0, gt=0, description="How long aliases are cached.")
    canary_share: float = Field(
        0.0, ge=0, le=1, description="Share of entities (sticky) the challenger answers."
    )
    shadow: bool = Field(False, description="The challenger also scores; logged, not returned.")
    canary_max_error_rate: float = Field(0.05, ge=0, le=1)
    canary_max_p95_ms: float = Field(250.0, gt=0, description="Canary inference latency SLO.")
    canary_window_seconds: float = Field(60.0, gt=0)
    canary_min_calls: int = Field(20, ge=1, description="Calls in the window before judging.")
    audit_log: Path = Field(
        Path(".wavepod/gateway-audit.jsonl"), description="Admin actions, append-only."
    )
    cost_per_hour: float = Field(
        0.0, ge=0, description="Cost of the serving fleet per hour (cost per 1K predictions)."
    )
    cost_per_1k_forecast: float = Field(
        0.0, ge=0, description="Forecast cost per 1,000 predictions; the cost alert's baseline."
    )

    @model_validator(mode="after")
    def _one_way_into_mlflow(self) -> GatewaySettings:
        if self.mlflow_token is not None and self.mlflow_username:
            raise ValueError("mlflow_token and mlflow_username: set one or neither")
        return self

    def mlflow_authorization(self) -> str | None:
        """The Authorization header for MLflow's REST API: its user, or a bearer token."""
        if self.mlflow_token is not None:
            return f"Bearer {self.mlflow_token.get_secret_value()}"
        credentials = self.mlflow_credentials()
        if credentials is None:
            return None
        return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
