"""One training run, start to registered model version.

    training set -> time split -> baseline -> Optuna search -> holdout metrics
    -> ONNX export + parity -> artifacts (model, signature, plots, report, card)
    -> model version registered with lineage tags

Registration is the last step and one MLflow call: a run that fails anywhere before it
(or in it) leaves no model version behind, only a FAILED run with the reason.
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow.onnx
import numpy as np
from mlflow.models import ModelSignature as MlflowSignature
from mlflow.types import Schema, TensorSpec

from trainer import report
from trainer.export import check_parity, to_onnx
from trainer.features import FeatureClient, TrainingSetRef
from trainer.search import SearchResult, Trial, search
from trainer.spec import TrainingSpec
from trainer.tracking import TAG_PREFIX, Tracking
from wavepod.metrics import baseline_predictions, regression_metrics
from wavepod.runtime.status import FieldViolation, InvalidArgument
from wavepod.signature import MLFLOW_METADATA_KEY, NUMERIC, ModelSignature
from wavepod.signature.frames import encode_frame, infer_signature
from wavepod.training_data import labelled, read_training_set, time_split

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
PACKAGES = ("lightgbm", "optuna", "onnx", "onnxruntime", "onnxmltools", "mlflow", "polars", "numpy")


@dataclass(frozen=True)
class RunEvent:
    phase: str
    done: int = 0
    total: int = 0
    message: str = ""
    trial: int = 0
    trials_total: int = 0
    best_metric: float = float("nan")


Emit = Callable[[RunEvent], None]


@dataclass(frozen=True)
class Prepared:
    """A checked spec with its MLflow run: what StartRun answers before the work starts."""

    run_id: str
    spec: TrainingSpec
    features: tuple[str, ...]
    definition_hash: str


@dataclass(frozen=True)
class RunResult:
    metrics: dict[str, float]
    model_version: str


class Trainer:
    def __init__(
        self,
        features: FeatureClient,
        tracking: Tracking,
        min_rows: int,
        parity_tolerance: float,
        git_sha: str,
    ) -> None:
        self.features = features
        self.tracking = tracking
        self.min_rows = min_rows
        self.parity_tolerance = parity_tolerance
        self.git_sha = git_sha

    def prepare(self, spec: TrainingSpec) -> Prepared:
        """Checks everything that can be checked at once; creates the MLflow run."""
        spec.check()
        names, definition_hash = self.features.feature_names(
            spec.feature_set, spec.feature_set_version
        )
        if spec.baseline_feature and spec.baseline_feature not in names:
            raise InvalidArgument(
                FieldViolation(
                    "spec.baseline_feature",
                    f"{spec.baseline_feature!r} is not a feature of {spec.feature_set}:"
                    f"{spec.feature_set_version}",
                )
            )
        tags = {
            f"{TAG_PREFIX}model_name": spec.model_name,
            f"{TAG_PREFIX}spec": json.dumps(asdict(spec), sort_keys=True),
            f"{TAG_PREFIX}feature_set": f"{spec.feature_set}:{spec.feature_set_version}",
            f"{TAG_PREFIX}definition_hash": definition_hash,
            f"{TAG_PREFIX}git_sha": self.git_sha,
            "mlflow.source.git.commit": self.git_sha,
        }
        run_id = self.tracking.create_run(f"{spec.model_name}-seed{spec.seed}", tags)
        return Prepared(run_id, spec, tuple(names), definition_hash)

    def execute(self, prepared: Prepared, emit: Emit) -> RunResult:
        try:
            result = self._execute(prepared, emit)
        except Exception as error:
            message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            log.warning("training run failed", extra={"run_id": prepared.run_id, "error": message})
            try:
                self.tracking.end(prepared.run_id, "FAILED", message)
            except Exception:  # MLflow itself may be what failed
                log.exception("could not mark the run failed", extra={"run_id": prepared.run_id})
            raise
        self.tracking.end(prepared.run_id, "FINISHED")
        return result

    def _training_set(self, spec: TrainingSpec) -> TrainingSetRef:
        if spec.training_set_uri:
            return TrainingSetRef(spec.training_set_uri, spec.training_set_hash, 0, "")
        return self.features.build_training_set(spec.feature_set, spec.feature_set_version)

    def _execute(self, prepared: Prepared, emit: Emit) -> RunResult:
        spec, run_id, names = prepared.spec, prepared.run_id, list(prepared.features)
        feature_set = f"{spec.feature_set}:{spec.feature_set_version}"
        emit(RunEvent("training_set", message=f"building {feature_set}"))
        ref = self._training_set(spec)
        frame = labelled(
            read_training_set(ref.uri, ref.content_hash, "spec.training_set.uri"),
            spec.label,
            names,
            "spec.label_column",
        )
        split = time_split(frame, self.min_rows)
        lineage = {
            "training_set.uri": ref.uri,
            "training_set.sha256": ref.content_hash,
            "feature_set": feature_set,
            "feature_set.definition_hash": prepared.definition_hash,
            "git_sha": self.git_sha,
        }
        self.tracking.log(
            run_id,
            params={
                "seed": spec.seed,
                "max_trials": spec.budget.max_trials,
                "max_seconds": spec.budget.max_seconds,
                "label": spec.label,
                "baseline_feature": spec.baseline_feature or "(label mean)",
                "features": len(names),
                **{f"rows.{k}": v for k, v in split.sizes().items()},
                "python": platform.python_version(),
                **{f"env.{p}": package_version(p) for p in PACKAGES},
            },
            tags={f"{TAG_PREFIX}{k}": v for k, v in lineage.items()}
            | {f"{TAG_PREFIX}split.{k}": v for k, v in split.ranges().items()},
        )

        emit(RunEvent("baseline"))
        # Ranges and categories over every labelled row: the most recent rows come closest
        # to what will be served.
        signature = infer_signature(frame, names, spec.label, feature_set)
        x_train, x_valid, x_hold = (
            encode_frame(signature, p) for p in (split.train, split.valid, split.holdout)
        )
        y_train, y_valid, y_hold = (
            p.get_column(spec.label).cast(float).to_numpy()
            for p in (split.train, split.valid, split.holdout)
        )
        if (
            spec.baseline_feature
            and signature.features[names.index(spec.baseline_feature)].kind != NUMERIC
        ):
            raise InvalidArgument(
                FieldViolation("spec.baseline_feature", f"{spec.baseline_feature!r} is not numeric")
            )
        fallback = float(np.mean(y_train))
        baseline = regression_metrics(
            y_hold, baseline_predictions(x_hold, names, spec.baseline_feature, fallback)
        )
        self.tracking.log(run_id, metrics={f"baseline_holdout_{k}": v for k, v in baseline.items()})

        total = spec.budget.max_trials

        def on_trial(trial: Trial, best: Trial) -> None:
            self.tracking.log(
                run_id,
                metrics={"trial_valid_mae": trial.valid_mae, "best_valid_mae": best.valid_mae},
                step=trial.number,
            )
            emit(
                RunEvent(
                    "search",
                    done=trial.number + 1,
                    total=total,
                    trial=trial.number + 1,
                    trials_total=total,
                    best_metric=best.valid_mae,
                )
            )

        emit(RunEvent("search", total=total, trials_total=total))
        found = search((x_train, y_train), (x_valid, y_valid), spec.budget, spec.seed, on_trial)
        predicted = np.asarray(found.model.predict(x_hold))
        holdout = regression_metrics(y_hold, predicted)

        emit(RunEvent("export"))
        proto = to_onnx(found.model, len(names), signature.input_name, signature.output_name)
        parity = check_parity(proto, found.model, x_hold, self.parity_tolerance)
        metrics = {
            **{f"holdout_{k}": v for k, v in holdout.items()},
            **{f"baseline_holdout_{k}": v for k, v in baseline.items()},
            "valid_mae": found.best.valid_mae,
            "trials": float(len(found.trials)),
            "mae_improvement_vs_baseline": 1 - holdout["mae"] / baseline["mae"],
            "onnx_parity_max_abs_diff": parity.max_abs_diff,
        }
        self.tracking.log(
            run_id, metrics=metrics, params={f"best.{k}": v for k, v in found.best.params.items()}
        )

        emit(RunEvent("artifacts"))
        with tempfile.TemporaryDirectory(prefix="wavepod-run-") as tmp:
            folder = Path(tmp)
            self._write_artifacts(folder, proto, signature, found, y_hold, predicted, names)
            both = {"model": holdout, "baseline": baseline}
            figures = {
                "residuals": report.residual_figure(y_hold, predicted, spec.label),
                "feature_importance": report.importance_figure(
                    names, found.model.booster_.feature_importance("gain")
                ),
                "search": report.search_figure(found.trials),
            }
            report.write_plots(folder / "plots", figures)
            (folder / "report.html").write_text(
                report.html_report(f"Training run {run_id}", both, list(figures.values()))
            )
            (folder / "model_card.md").write_text(
                report.model_card(
                    spec.model_name,
                    lineage,
                    split.ranges(),
                    both,
                    found.best.params,
                    names,
                    spec.label,
                )
            )
            self.tracking.log_artifacts(run_id, folder)

        emit(RunEvent("register"))
        version = self.tracking.register(
            run_id,
            spec.model_name,
            MODEL_ARTIFACT,
            {
                **{f"{TAG_PREFIX}{k}": v for k, v in lineage.items()},
                f"{TAG_PREFIX}holdout_mae": f"{holdout['mae']:.6g}",
                f"{TAG_PREFIX}baseline_holdout_mae": f"{baseline['mae']:.6g}",
                f"{TAG_PREFIX}onnx_parity_max_abs_diff": f"{parity.max_abs_diff:.3g}",
                f"{TAG_PREFIX}seed": str(spec.seed),
            },
        )
        self.tracking.log(run_id, tags={f"{TAG_PREFIX}model_version": str(version.version)})
        return RunResult(metrics, str(version.version))

    @staticmethod
    def _write_artifacts(
        folder: Path,
        proto: object,
        signature: ModelSignature,
        found: SearchResult,
        y_hold: np.ndarray,
        predicted: np.ndarray,
        names: list[str],
    ) -> None:
        n = len(names)
        mlflow.onnx.save_model(
            proto,
            str(folder / MODEL_ARTIFACT),
            signature=MlflowSignature(
                inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n), signature.input_name)]),
                outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1), signature.output_name)]),
            ),
            metadata={MLFLOW_METADATA_KEY: signature.to_json()},
            onnx_execution_providers=["CPUExecutionProvider"],
        )
        (folder / "signature.json").write_text(signature.to_json())
        trials = [asdict(t) for t in found.trials]
        (folder / "trials.json").write_text(json.dumps(trials, indent=1))
