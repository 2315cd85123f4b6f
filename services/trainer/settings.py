"""Trainer settings: WAVEPOD_TRAINER_* (plus the common ones in wavepod.runtime.settings)."""

from __future__ import annotations

import subprocess

from pydantic import Field

from wavepod.runtime import RegistryClientSettings


def _git_sha() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() or "unknown"


class TrainerSettings(RegistryClientSettings):
    feature_service: str = Field("127.0.0.1:50052", description="The feature service (host:port).")
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000", description="MLflow tracking and registry server."
    )
    min_training_rows: int = Field(
        200, ge=10, description="Fewer labelled rows than this fail the run (too small to split)."
    )
    parity_tolerance: float = Field(
        1e-4, gt=0, description="Max |ONNX - native| on the holdout before registration."
    )
    build_timeout_seconds: float = Field(
        900, gt=0, description="Deadline for the feature service to build a training set."
    )
    concurrent_runs: int = Field(1, ge=1, description="Runs executing at once; others queue.")
    git_sha: str = Field(
        default_factory=_git_sha, description="Recorded as lineage; default: the checkout's HEAD."
    )
