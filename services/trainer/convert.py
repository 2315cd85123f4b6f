"""Trainer protos <-> the trainer's types (specs, live runs, MLflow runs)."""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from trainer.runner import RunEvent
from trainer.runs import FAILED, PENDING, RUNNING, SUCCEEDED, LiveRun
from trainer.spec import Budget, TrainingSpec
from trainer.tracking import TAG_PREFIX
from wavepod.common.v1 import refs_pb2
from wavepod.feature.v1 import feature_pb2
from wavepod.trainer.v1 import trainer_pb2

STATES = {
    PENDING: trainer_pb2.RUN_STATE_PENDING,
    RUNNING: trainer_pb2.RUN_STATE_RUNNING,
    SUCCEEDED: trainer_pb2.RUN_STATE_SUCCEEDED,
    FAILED: trainer_pb2.RUN_STATE_FAILED,
}
MLFLOW_STATES = {"RUNNING": RUNNING, "SCHEDULED": PENDING, "FINISHED": SUCCEEDED}


def spec_from_proto(spec: trainer_pb2.RunSpec) -> TrainingSpec:
    return TrainingSpec(
        model_name=spec.model_name,
        feature_set=spec.feature_set.name,
        feature_set_version=spec.feature_set.version,
        label=spec.label_column,
        budget=Budget(spec.budget.max_trials, spec.budget.max_seconds),
        seed=spec.seed,
        training_set_uri=spec.training_set.uri,
        training_set_hash=spec.training_set.content_hash,
        baseline_feature=spec.baseline_feature,
    )


def spec_to_proto(spec: TrainingSpec) -> trainer_pb2.RunSpec:
    return trainer_pb2.RunSpec(
        model_name=spec.model_name,
        feature_set=feature_pb2.FeatureSetRef(
            name=spec.feature_set, version=spec.feature_set_version
        ),
        training_set=refs_pb2.DatasetRef(
            uri=spec.training_set_uri, content_hash=spec.training_set_hash
        ),
        label_column=spec.label,
        budget=trainer_pb2.SearchBudget(
            max_trials=spec.budget.max_trials, max_seconds=spec.budget.max_seconds
        ),
        seed=spec.seed,
        baseline_feature=spec.baseline_feature,
    )


def _stamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def live_run_to_proto(run: LiveRun) -> trainer_pb2.Run:
    spec = run.prepared.spec
    result = run.result
    return trainer_pb2.Run(
        run_id=run.prepared.run_id,
        spec=spec_to_proto(spec),
        state=STATES[run.state],
        metrics=result.metrics if result else {},
        registered_model=(
            refs_pb2.ModelRef(name=spec.model_name, version=result.model_version)
            if result
            else None
        ),
        mlflow_run_id=run.prepared.run_id,
        error=run.error,
        started_at=_stamp(run.started_at),
        ended_at=_stamp(run.ended_at),
    )


def mlflow_run_to_proto(run: Any) -> trainer_pb2.Run:
    """A run from MLflow's records (this process may not have started it)."""
    tags = run.data.tags
    raw_spec = json.loads(tags.get(f"{TAG_PREFIX}spec", "null"))
    spec = (
        spec_to_proto(TrainingSpec(**{**raw_spec, "budget": Budget(**raw_spec["budget"])}))
        if raw_spec
        else None
    )
    version = tags.get(f"{TAG_PREFIX}model_version", "")
    state = MLFLOW_STATES.get(run.info.status, FAILED)
    return trainer_pb2.Run(
        run_id=run.info.run_id,
        spec=spec,
        state=STATES[state],
        metrics={k: v for k, v in run.data.metrics.items() if not math.isnan(v)},
        registered_model=(
            refs_pb2.ModelRef(name=tags.get(f"{TAG_PREFIX}model_name", ""), version=version)
            if version
            else None
        ),
        mlflow_run_id=run.info.run_id,
        error=tags.get(f"{TAG_PREFIX}error", ""),
        started_at=_stamp(run.info.start_time / 1000 if run.info.start_time else None),
        ended_at=_stamp(run.info.end_time / 1000 if run.info.end_time else None),
    )


def event_to_proto(run_id: str, state: str, event: RunEvent) -> trainer_pb2.RunEvent:
    return trainer_pb2.RunEvent(
        run_id=run_id,
        progress=refs_pb2.Progress(
            phase=event.phase, done=event.done, total=event.total, message=event.message
        ),
        trial=event.trial,
        trials_total=event.trials_total,
        best_metric=event.best_metric,
        state=STATES[state],
    )
