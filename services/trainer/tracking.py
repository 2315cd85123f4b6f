"""Everything the trainer tells MLflow, through one client (no global fluent state, so
runs in parallel threads cannot mix up their active run)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from wavepod.registry import refused
from wavepod.runtime.status import Unavailable

# Fail within seconds when the server is down instead of MLflow's minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXPERIMENT = "wavepod-training"
# MLflow caps param values at 6000 characters; ours are far shorter.
TAG_PREFIX = "wavepod."


class Tracking:
    def __init__(self, uri: str, experiment: str = EXPERIMENT) -> None:
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self._experiment = experiment
        self._experiment_id: str | None = None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MlflowException as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(error, "error_code", "")):
                raise
            refusal = refused(error, what, self.uri)
            if refusal is not None:
                raise refusal from None
            raise Unavailable(f"MLflow at {self.uri}: {what} failed: {error.message}") from None
        except OSError as error:
            raise Unavailable(f"MLflow at {self.uri} is unreachable ({what}): {error}") from None

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self._call(
                "get experiment", self.client.get_experiment_by_name, self._experiment
            )
            self._experiment_id = (
                found.experiment_id
                if found is not None
                else self._call(
                    "create experiment", self.client.create_experiment, self._experiment
                )
            )
        return self._experiment_id

    def create_run(self, name: str, tags: Mapping[str, str]) -> str:
        run = self._call(
            "create run",
            self.client.create_run,
            self.experiment_id(),
            tags=dict(tags),
            run_name=name,
        )
        return str(run.info.run_id)

    def log(
        self,
        run_id: str,
        params: Mapping[str, Any] = {},
        metrics: Mapping[str, float] = {},
        tags: Mapping[str, str] = {},
        step: int = 0,
    ) -> None:
        self._call(
            "log",
            self.client.log_batch,
            run_id,
            metrics=[Metric(k, float(v), 0, step) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        self._call("log artifacts", self.client.log_artifacts, run_id, str(folder), artifact_path)

    def register(
        self, run_id: str, model_name: str, artifact_path: str, tags: Mapping[str, str]
    ) -> ModelVersion:
        """Creates the model version with all its tags in one call: never half-tagged."""
        try:
            self.client.get_registered_model(model_name)
        except MlflowException:
            self._call("create registered model", self.client.create_registered_model, model_name)
        run = self._call("get run", self.client.get_run, run_id)
        return self._call(
            "create model version",
            self.client.create_model_version,
            model_name,
            f"{run.info.artifact_uri}/{artifact_path}",
            run_id=run_id,
            tags=dict(tags),
        )

    def delete_version(self, model_name: str, version: str) -> None:
        self.client.delete_model_version(model_name, version)

    def end(self, run_id: str, status: str, error: str = "") -> None:
        if error:
            self._call("tag error", self.client.set_tag, run_id, f"{TAG_PREFIX}error", error[:5000])
        self._call("end run", self.client.set_terminated, run_id, status)

    def fail_orphans(self) -> int:
        """Marks FAILED the runs still RUNNING from a trainer that stopped mid-run (one
        trainer per experiment: a second replica would fail the first one's runs)."""
        found = self._call(
            "search runs",
            self.client.search_runs,
            [self.experiment_id()],
            filter_string=f"attributes.status = 'RUNNING' and tags.`{TAG_PREFIX}model_name` != ''",
            max_results=1000,
        )
        for run in found:
            self.end(run.info.run_id, "FAILED", "the trainer stopped before the run ended")
        return len(found)

    def get_run(self, run_id: str) -> Any:
        return self._call("get run", self.client.get_run, run_id)

    def search_runs(self, model_name: str, page_size: int, page_token: str) -> Any:
        flt = f"tags.`{TAG_PREFIX}model_name` = '{model_name}'" if model_name else ""
        return self._call(
            "search runs",
            self.client.search_runs,
            [self.experiment_id()],
            filter_string=flt,
            max_results=page_size,
            order_by=["attributes.start_time DESC"],
            page_token=page_token or None,
        )
