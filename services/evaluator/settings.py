"""Evaluator settings: WAVEPOD_EVALUATOR_* (plus the common ones in wavepod.runtime.settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from evaluator.drift import DriftPolicy
from evaluator.gates import GatePolicy
from evaluator.health import HealthPolicy
from wavepod.runtime import RegistryClientSettings


class EvaluatorSettings(RegistryClientSettings):
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000", description="MLflow tracking and registry server."
    )
    inference: str = Field(
        "127.0.0.1:8001", description="Inference service whose repository Promote publishes to."
    )
    subgroups: str = Field(
        "age_band,sex,payer,channel", description="Columns whose values are judged separately."
    )
    audit_log: Path = Field(
        Path(".wavepod/evaluator-audit.jsonl"), description="Promotions and rollbacks."
    )
    publish_timeout_seconds: float = Field(120.0, gt=0)
    lake: str = Field(
        "ingest://127.0.0.1:50051",
        description="Where the prediction log and feedback land: ingest://host:port or a folder.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (MinIO) of a lake kept in a bucket; unset: AWS."
        " Credentials: the standard AWS environment.",
    )
    # Monitoring (GetModelHealth).
    drift_max_psi: float = Field(0.2, gt=0)
    drift_max_ks: float = Field(0.1, gt=0)
    drift_max_abs_z: float = Field(6.0, gt=0)
    online_tolerance: float = Field(
        0.2, ge=0, description="Online MAE may exceed the evaluated MAE by this share."
    )
    online_min_labelled: int = Field(30, ge=1, description="Outcomes before judging online MAE.")
    # The retrain loop.
    trainer: str = Field("127.0.0.1:50053", description="Trainer service the loop starts runs on.")
    monitor_window_hours: float = Field(168.0, gt=0, description="Predictions health looks at.")
    retrain_models: str = Field("", description="Models the loop watches (comma-separated).")
    retrain_check_seconds: float = Field(
        0.0, ge=0, description="How often the loop checks them; 0: only on Retrain calls."
    )
    retrain_run_timeout_seconds: float = Field(3600.0, gt=0)
    # The promotion gate's defaults; a request may override any of them.
    gate_min_improvement: float = Field(0.0, description="Relative MAE gain over the champion.")
    gate_subgroup_tolerance: float = Field(0.05, ge=0)
    gate_min_subgroup_rows: int = Field(30, ge=1)
    gate_max_parity_diff: float = Field(1e-4, gt=0)
    gate_latency_budget_ms: float = Field(5.0, gt=0)

    def health_policy(self) -> HealthPolicy:
        return HealthPolicy(
            DriftPolicy(self.drift_max_psi, self.drift_max_ks, self.drift_max_abs_z),
            self.online_tolerance,
            self.online_min_labelled,
        )

    def gate_policy(self) -> GatePolicy:
        return GatePolicy(
            self.gate_min_improvement,
            self.gate_subgroup_tolerance,
            self.gate_min_subgroup_rows,
            self.gate_max_parity_diff,
            self.gate_latency_budget_ms,
        )
