"""Evaluate: a candidate version against the champion (or, before there is one, the
baseline heuristic) on the same rows, overall and per subgroup, then the gate.

The rows are the candidate's holdout by default: its training set (hash checked) split
by time exactly as the trainer split it. Everything lands on the candidate's MLflow run
(metrics, evaluation.json, the HTML report) and the verdict on its model version's tags,
which is what Promote checks: MLflow is the record, the evaluator keeps no state.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl

from evaluator import report
from evaluator.gates import GateInputs, GatePolicy, GateResult, apply_gates
from wavepod.metrics import (
    GroupMetrics,
    baseline_predictions,
    calibration,
    regression_metrics,
    subgroup_metrics,
)
from wavepod.registry import CHAMPION, RegisteredModel, alias_version, client, fetch
from wavepod.runtime.status import FailedPrecondition
from wavepod.signature.frames import encode_frame
from wavepod.training_data import labelled, read_training_set, time_split

TAG = "wavepod."
EVALUATION_ID_TAG = f"{TAG}evaluation.id"
EVALUATION_PASSED_TAG = f"{TAG}evaluation.passed"
EVALUATION_FAILED_TAG = f"{TAG}evaluation.failed_gates"
LATENCY_CALLS = 200
REPORTS, REPORT_FILE, REFERENCE_FILE = "evaluations", "report.html", "reference.parquet"
PREDICTION = "prediction"  # the model's output, as a drift reference column


@dataclass(frozen=True)
class Evaluation:
    evaluation_id: str
    model: str
    candidate: str
    champion: str  # "" when there was none
    reference: str  # what the candidate was measured against
    dataset_uri: str
    rows: int
    candidate_metrics: dict[str, float]
    reference_metrics: dict[str, float]
    candidate_groups: list[GroupMetrics]
    champion_groups: list[GroupMetrics]
    # Per subgroup dimension: the widest MAE gap between its judged groups (candidate).
    fairness_gaps: dict[str, float]
    calibration: list[dict[str, float]]
    gates: list[GateResult]
    passed: bool
    latency_p95_ms: float
    report_uri: str  # an artifact of the candidate's MLflow run
    residuals: dict[str, list[float]] = field(default_factory=dict)  # for the report

    def failed_gates(self) -> list[str]:
        return [g.gate for g in self.gates if not g.passed]


def _session(model: RegisteredModel) -> ort.InferenceSession:
    return ort.InferenceSession(str(model.onnx_file), providers=["CPUExecutionProvider"])


def _encode(model: RegisteredModel, frame: pl.DataFrame) -> np.ndarray:
    missing = [n for n in model.signature.names if n not in frame.columns]
    if missing:
        raise FailedPrecondition(
            f"{model.name} version {model.version} needs column(s) {missing} the dataset lacks"
        )
    return encode_frame(model.signature, frame)


def _predict(session: ort.InferenceSession, model: RegisteredModel, x: np.ndarray) -> np.ndarray:
    signature = model.signature
    out = session.run([signature.output_name], {signature.input_name: x})[0]
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _latency_p95_ms(session: ort.InferenceSession, model: RegisteredModel, x: np.ndarray) -> float:
    signature = model.signature
    timings = []
    for i in range(min(LATENCY_CALLS, x.shape[0])):
        started = time.perf_counter()
        session.run([signature.output_name], {signature.input_name: x[i : i + 1]})
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(timings, 95))


def fairness_gaps(groups: list[GroupMetrics], min_rows: int) -> dict[str, float]:
    gaps: dict[str, float] = {}
    for dimension in sorted({g.dimension for g in groups}):
        maes = [g.metrics["mae"] for g in groups if g.dimension == dimension and g.rows >= min_rows]
        if len(maes) >= 2:
            gaps[dimension] = max(maes) - min(maes)
    return gaps


class Evaluator:
    def __init__(self, tracking_uri: str, subgroups: tuple[str, ...]) -> None:
        self.tracking_uri = tracking_uri
        self.subgroups = subgroups

    def _rows(
        self, candidate: RegisteredModel, dataset_uri: str, dataset_hash: str
    ) -> tuple[pl.DataFrame, str]:
        label, names = candidate.signature.label, candidate.signature.names
        if dataset_uri:
            frame = read_training_set(dataset_uri, dataset_hash, "dataset.uri")
            return labelled(frame, label, names, "dataset.uri"), dataset_uri
        uri = candidate.tags.get(f"{TAG}training_set.uri", "")
        if not uri:
            raise FailedPrecondition(
                f"{candidate.name} version {candidate.version} records no training set:"
                " name a dataset to evaluate on"
            )
        frame = read_training_set(uri, candidate.tags.get(f"{TAG}training_set.sha256", ""))
        return time_split(labelled(frame, label, names), min_rows=3).holdout, uri

    def _groups(
        self, frame: pl.DataFrame, truth: np.ndarray, predicted: np.ndarray
    ) -> list[GroupMetrics]:
        return [
            g
            for column in self.subgroups
            if column in frame.columns
            for g in subgroup_metrics(truth, predicted, column, frame[column].to_list())
        ]

    def evaluate(
        self, name: str, version: str, dataset_uri: str, dataset_hash: str, policy: GatePolicy
    ) -> Evaluation:
        registry = client(self.tracking_uri)
        champion_version = alias_version(self.tracking_uri, name, CHAMPION)
        with fetch(self.tracking_uri, name, version) as candidate:
            frame, used_uri = self._rows(candidate, dataset_uri, dataset_hash)
            if frame.height == 0:
                raise FailedPrecondition(f"no labelled rows to evaluate on in {used_uri}")
            truth = frame[candidate.signature.label].to_numpy().astype(np.float64)
            x = _encode(candidate, frame)
            session = _session(candidate)
            predicted = _predict(session, candidate, x)
            latency = _latency_p95_ms(session, candidate, x)
            run = registry.get_run(candidate.run_id)
            parity = float(candidate.tags.get(f"{TAG}onnx_parity_max_abs_diff", "nan"))
            spec = json.loads(run.data.tags.get(f"{TAG}spec", "{}"))
        candidate_groups = self._groups(frame, truth, predicted)
        champion_groups: list[GroupMetrics] = []
        if champion_version and champion_version != str(candidate.version):
            with fetch(self.tracking_uri, name, champion_version) as champion:
                reference_predictions = _predict(
                    _session(champion), champion, _encode(champion, frame)
                )
            reference = f"champion version {champion_version}"
            champion_groups = self._groups(frame, truth, reference_predictions)
        else:
            baseline = spec.get("baseline_feature", "")
            reference_predictions = baseline_predictions(
                x, candidate.signature.names, baseline, float(np.mean(truth))
            )
            reference = f"baseline ({baseline or 'mean'})"
        candidate_metrics = regression_metrics(truth, predicted)
        reference_metrics = regression_metrics(truth, reference_predictions)
        gates = apply_gates(
            policy,
            GateInputs(
                candidate_metrics["mae"],
                reference_metrics["mae"],
                reference,
                candidate_groups,
                champion_groups,
                parity,
                latency,
            ),
        )
        evaluation_id = uuid.uuid4().hex[:12]
        evaluation = Evaluation(
            evaluation_id=evaluation_id,
            model=name,
            candidate=str(candidate.version),
            champion=champion_version if champion_groups else "",
            reference=reference,
            dataset_uri=used_uri,
            rows=frame.height,
            candidate_metrics=candidate_metrics,
            reference_metrics=reference_metrics,
            candidate_groups=candidate_groups,
            champion_groups=champion_groups,
            fairness_gaps=fairness_gaps(candidate_groups, policy.min_subgroup_rows),
            calibration=calibration(truth, predicted),
            gates=gates,
            passed=all(g.passed for g in gates),
            latency_p95_ms=latency,
            report_uri=f"{run.info.artifact_uri}/{REPORTS}/{evaluation_id}/{REPORT_FILE}",
            residuals={
                "candidate": (predicted - truth).tolist(),
                "reference": (reference_predictions - truth).tolist(),
            },
        )
        drift_reference = frame.select(candidate.signature.names).with_columns(
            pl.Series(PREDICTION, predicted)
        )
        self._record(evaluation, candidate.run_id, drift_reference)
        return evaluation

    def _record(self, evaluation: Evaluation, run_id: str, drift_reference: pl.DataFrame) -> None:
        registry = client(self.tracking_uri)
        metrics = {
            **{f"evaluation.{k}": v for k, v in evaluation.candidate_metrics.items()},
            **{f"evaluation.reference_{k}": v for k, v in evaluation.reference_metrics.items()},
            **{f"evaluation.fairness_gap.{k}": v for k, v in evaluation.fairness_gaps.items()},
            "evaluation.latency_p95_ms": evaluation.latency_p95_ms,
            "evaluation.passed": float(evaluation.passed),
        }
        for key, value in metrics.items():
            if math.isfinite(value):
                registry.log_metric(run_id, key, value)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            record = {k: v for k, v in asdict(evaluation).items() if k != "residuals"}
            (folder / "evaluation.json").write_text(json.dumps(record, indent=2, default=str))
            (folder / REPORT_FILE).write_text(report.render(evaluation))
            # What drift is measured against later: the rows judged here, as the model saw
            # them, and what it answered.
            drift_reference.write_parquet(folder / REFERENCE_FILE)
            registry.log_artifacts(run_id, str(folder), f"{REPORTS}/{evaluation.evaluation_id}")
        # The verdict Promote reads, on the version itself; written last.
        verdict: tuple[tuple[str, str], ...] = (
            (EVALUATION_ID_TAG, evaluation.evaluation_id),
            (EVALUATION_FAILED_TAG, ",".join(evaluation.failed_gates())),
            (EVALUATION_PASSED_TAG, str(evaluation.passed).lower()),
        )
        for key, tag in verdict:
            registry.set_model_version_tag(evaluation.model, evaluation.candidate, key, tag)
