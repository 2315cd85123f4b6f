"""The model plane as processes, for tests that need models trained for real: a simulated
lake, MLflow, and the feature, trainer and inference services (never in the server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from feature.testing import small_pharmacy, write_lake
from wavepod.runtime.testing.process import ServiceProcess, service_process
from wavepod.runtime.testing.service_tokens import ServiceTokens
from wavepod.simulator.generate import PharmacyData
from wavepod.testing.mlflow import mlflow_server

GIT_SHA = "0123abc"  # what the trainer records as lineage here


@dataclass(frozen=True)
class ModelPlane:
    mlflow: str
    feature: ServiceProcess
    trainer: ServiceProcess
    inference: ServiceProcess


@contextmanager
def model_plane(
    state: Path,
    patients: int = 600,
    data: PharmacyData | None = None,
    auth: ServiceTokens | None = None,
) -> Iterator[ModelPlane]:
    """The plane over a lake at `state`/lake: a small simulated pharmacy, or `data`;
    with `auth`, each service checks service tokens and presents its own."""
    write_lake(state / "lake", data or small_pharmacy(patients=patients))

    def with_auth(service: str, env: dict[str, str]) -> dict[str, str]:
        return {**env, **auth.env(service)} if auth else env

    feature_env = with_auth(
        "feature",
        {
            "WAVEPOD_FEATURE_LAKE": str(state / "lake"),
            "WAVEPOD_FEATURE_STORE_ROOT": str(state / "features"),
        },
    )
    with (
        mlflow_server(state / "mlflow") as tracking,
        service_process("feature.server", "feature", feature_env) as feature,
        service_process(
            "trainer.server",
            "trainer",
            with_auth(
                "trainer",
                {
                    "WAVEPOD_TRAINER_FEATURE_SERVICE": feature.address,
                    "WAVEPOD_TRAINER_MLFLOW_TRACKING_URI": tracking,
                    "WAVEPOD_TRAINER_GIT_SHA": GIT_SHA,
                },
            ),
        ) as trainer,
        service_process(
            "inference.server",
            "inference",
            with_auth(
                "inference",
                {
                    "WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(state / "models"),
                    "WAVEPOD_INFERENCE_MLFLOW_TRACKING_URI": tracking,
                },
            ),
        ) as inference,
    ):
        yield ModelPlane(tracking, feature, trainer, inference)
