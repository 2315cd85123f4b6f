"""Helpers for gateway tests and benchmarks: a refill model trained on a real training
set and exported the way the trainer exports it (never imported by the server)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import polars as pl

from inference.publish import BatchingChoice, publish_spec
from inference.repository import ModelRepository
from inference.testing import FEATURES
from trainer.export import to_onnx
from trainer.search import fit
from wavepod.common.v1 import values_pb2
from wavepod.signature import NUMERIC, FeatureSpec, ModelSignature
from wavepod.signature.frames import encode_frame, infer_signature
from wavepod.values import to_value

LABEL = "days_to_next_fill"
DEFAULT_BATCHING = BatchingChoice()

# The signature of inference.testing's synthetic tree model: inline rows, no features.
SYNTHETIC_SIGNATURE = ModelSignature(
    tuple(FeatureSpec(f"f{i}", NUMERIC, -10.0, 10.0, nullable=False) for i in range(FEATURES)),
    label="y",
    feature_set="synthetic:1",
)


def synthetic_row(value: float = 0.5) -> values_pb2.Row:
    return values_pb2.Row(values={f"f{i}": to_value(value) for i in range(FEATURES)})


@dataclass(frozen=True)
class TrainedModel:
    signature: ModelSignature
    proto: onnx.ModelProto
    encoded: np.ndarray  # the training rows, encoded
    expected: np.ndarray  # the native model's predictions on them


def train_refill_model(training: pl.DataFrame, names: list[str]) -> TrainedModel:
    labelled = training.filter(pl.col(LABEL).is_not_null())
    signature = infer_signature(labelled, names, LABEL, "refill:1")
    x = encode_frame(signature, labelled)
    params = {"n_estimators": 60, "objective": "regression_l1"}
    model = fit(params, x, labelled[LABEL].to_numpy(), seed=1)
    proto = to_onnx(model, len(names), signature.input_name, signature.output_name)
    return TrainedModel(signature, proto, x, np.asarray(model.predict(x)))


def publish_model(
    repository: ModelRepository,
    name: str,
    version: int,
    model: TrainedModel,
    batching: BatchingChoice = DEFAULT_BATCHING,
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model.proto, str(path))
        return repository.publish(name, version, path, publish_spec(model.signature, batching))
