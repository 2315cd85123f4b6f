"""GetModelHealth: online metrics from the lake and drift against the evaluation's reference.

The prediction log and feedback are read from the lake (through ingest's lineage, or a
directory). Drift compares what callers sent (the logged inputs, numeric and
categorical) and what the model answered with the reference kept by the version's latest
evaluation. A retrain is recommended when a feature or the predictions drift, or when the
online MAE exceeds the evaluated MAE by more than the tolerance once enough outcomes
arrived.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from mlflow.artifacts import download_artifacts
from mlflow.entities import Run

from evaluator import monitoring_report
from evaluator.drift import (
    Drift,
    DriftPolicy,
    compare,
    compare_categories,
    summarize,
    summarize_categories,
)
from evaluator.evaluation import (
    EVALUATION_ID_TAG,
    PREDICTION,
    REFERENCE_FILE,
    REPORT_FILE,
    REPORTS,
)
from evaluator.metrics import publish
from evaluator.online import OnlineMetrics, online_metrics
from wavepod.lake import Lake, reading, scan_committed
from wavepod.registry import CHAMPION, alias_version, client
from wavepod.runtime.status import FailedPrecondition, NotFound

PREDICTION_LOG, FEEDBACK = "prediction_log", "prediction_feedback"
MONITORING = "monitoring"  # <run artifacts>/monitoring/<window stamp>/report.html


@dataclass(frozen=True)
class HealthPolicy:
    drift: DriftPolicy
    online_tolerance: float  # online MAE may exceed the evaluated MAE by this share
    min_labelled: int  # outcomes needed before the online MAE is judged


@dataclass(frozen=True)
class Health:
    model: str
    version: str
    online: OnlineMetrics
    drift: list[Drift]
    reasons: list[str]  # why a retrain is recommended; empty: it is not
    report_uri: str = ""  # the window's HTML report, an artifact of the version's run


class HealthCheck:
    def __init__(
        self, tracking_uri: str, lake: Lake, subgroups: tuple[str, ...], policy: HealthPolicy
    ) -> None:
        self._uri = tracking_uri
        self._lake = lake
        self._subgroups = subgroups
        self._policy = policy
        # The last report logged per (model, version): its window, content digest and URI.
        self._reports: dict[tuple[str, str], tuple[datetime | None, str, str]] = {}

    def _reference(self, name: str, version: str) -> tuple[pl.DataFrame, float, Run]:
        """The latest evaluation's reference rows, evaluated MAE, and the version's run."""
        registry = client(self._uri)
        found = registry.get_model_version(name, version)
        evaluation_id = (found.tags or {}).get(EVALUATION_ID_TAG, "")
        if not evaluation_id:
            raise FailedPrecondition(
                f"{name} version {version} has not been evaluated: no drift reference"
            )
        run = registry.get_run(found.run_id or "")
        with tempfile.TemporaryDirectory() as tmp:
            path = download_artifacts(
                artifact_uri=f"{run.info.artifact_uri}/{REPORTS}/{evaluation_id}/{REFERENCE_FILE}",
                dst_path=tmp,
                tracking_uri=self._uri,
            )
            reference = pl.read_parquet(Path(path))
        return reference, float(run.data.metrics.get("evaluation.mae", float("nan"))), run

    def check(self, name: str, version: str, since: datetime | None) -> Health:
        version = version or alias_version(self._uri, name, CHAMPION)
        if not version:
            raise NotFound(f"model {name!r} has no champion; name a version")
        reference, evaluated_mae, run = self._reference(name, version)
        scan = scan_committed(self._lake, PREDICTION_LOG)
        if scan is None:
            raise FailedPrecondition("no prediction log in the lake yet")
        scan = scan.filter(pl.col("model") == name)
        if since is not None:
            scan = scan.filter(pl.col("at") >= since)
        with reading("the prediction log"):
            log = scan.collect()
        feedback_scan = scan_committed(self._lake, FEEDBACK)
        if feedback_scan is not None:
            with reading("the feedback"):
                feedback = feedback_scan.collect()
        else:
            feedback = pl.DataFrame(
                schema={
                    "prediction_id": pl.String,
                    "observed_value": pl.Float64,
                    "received_at": pl.Datetime("us"),
                }
            )
        online = online_metrics(log, feedback, self._subgroups)
        answered = log.filter((pl.col("version") == version) & (pl.col("route") != "shadow"))
        drift = self._drift(reference, answered)
        reasons = [
            f"{d.feature} drifted (PSI {d.psi:.2f}, KS {d.ks_statistic:.2f})"
            for d in drift
            if d.drifted
        ]
        mae = online.by_version.get(f"{version}/champion", {}).get("mae")
        limit = evaluated_mae * (1 + self._policy.online_tolerance)
        labelled = online.labelled
        if mae is not None and labelled >= self._policy.min_labelled and mae > limit:
            reasons.append(
                f"online MAE {mae:.2f} over {labelled} outcomes exceeds the evaluated"
                f" {evaluated_mae:.2f} by more than {self._policy.online_tolerance:.0%}"
            )
        health = Health(name, version, online, drift, reasons)
        publish(health)
        return replace(health, report_uri=self._report(health, since, evaluated_mae, run))

    def _report(
        self, health: Health, since: datetime | None, evaluated_mae: float, run: Run
    ) -> str:
        """The window's HTML report, logged beside the version's evaluations in MLflow.

        A dashboard polls this check; while nothing in the window changed, the report
        already logged is the answer, instead of one more artifact per poll."""
        key = (health.model, health.version)
        digest = hashlib.sha256(repr((health, evaluated_mae)).encode()).hexdigest()
        last = self._reports.get(key)
        if last is not None and last[:2] == (since, digest):
            return last[2]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = f"{MONITORING}/{stamp}/{REPORT_FILE}"
        html = monitoring_report.render(health, since, evaluated_mae, self._policy.drift.max_psi)
        client(self._uri).log_text(run.info.run_id, html, path)
        uri = f"{run.info.artifact_uri}/{path}"
        self._reports[key] = (since, digest, uri)
        return uri

    def _drift(self, reference: pl.DataFrame, answered: pl.DataFrame) -> list[Drift]:
        if answered.height == 0:
            return []
        categorical = [
            compare_categories(
                summarize_categories(column, reference[column].to_list()),
                answered["inputs"].str.json_path_match(f"$.{column}").to_list(),
                self._policy.drift,
            )
            for column, kind in reference.schema.items()
            if kind == pl.String
        ]
        numeric = [c for c, t in reference.schema.items() if t.is_numeric()]
        current = {
            c: answered["inputs"].str.json_path_match(f"$.{c}").cast(pl.Float64, strict=False)
            for c in numeric
            if c != PREDICTION
        }
        current[PREDICTION] = answered["prediction"]
        return [
            compare(
                summarize(column, reference[column].cast(pl.Float64).to_numpy()),
                np.asarray(current[column].to_numpy(), dtype=np.float64),
                self._policy.drift,
            )
            for column in numeric
            if reference[column].drop_nulls().len() > 0
        ] + categorical
