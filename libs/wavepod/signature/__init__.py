"""A model's input contract: which features, in what order, of what kind and range.

The trainer derives it from the training data and records it with the model (MLflow
model metadata, and the Triton config's parameters); the gateway validates requests
against it and encodes rows with the same `encode`, so training and serving cannot
disagree on feature order or category codes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

# Where the signature travels in a logged MLflow model (its MLmodel `metadata`).
MLFLOW_METADATA_KEY = "wavepod_signature"

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # NUMERIC | CATEGORICAL
    # Range seen in training (numeric); requests outside it are out of distribution.
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = True
    # Known values (categorical), in code order: code i means categories[i].
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSignature:
    features: tuple[FeatureSpec, ...]
    label: str
    feature_set: str  # name:version
    input_name: str = "features"
    output_name: str = "prediction"

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSignature:
        raw = json.loads(text)
        features = tuple(
            FeatureSpec(**{**f, "categories": tuple(f["categories"])}) for f in raw.pop("features")
        )
        return cls(features=features, **raw)

    @classmethod
    def infer(
        cls, frame: pl.DataFrame, names: Sequence[str], label: str, feature_set: str
    ) -> ModelSignature:
        """The signature of `names` as they appear in the training frame."""
        specs = []
        for name in names:
            column = frame.get_column(name)
            nullable = column.null_count() > 0
            if column.dtype in (pl.String, pl.Categorical, pl.Enum):
                categories = tuple(sorted(column.drop_nulls().cast(pl.String).unique().to_list()))
                specs.append(
                    FeatureSpec(name, CATEGORICAL, nullable=nullable, categories=categories)
                )
            else:
                values = column.cast(pl.Float64).drop_nulls().drop_nans()
                lo, hi = (values.min(), values.max()) if values.len() else (None, None)
                specs.append(FeatureSpec(name, NUMERIC, _float(lo), _float(hi), nullable=nullable))
        return cls(tuple(specs), label, feature_set)

    def encode(self, frame: pl.DataFrame) -> np.ndarray:
        """float32 [rows, features]: numbers as they are, categories as their codes, and
        missing (or unknown) values as NaN, which the tree models route as missing."""
        columns = []
        for spec in self.features:
            column = frame.get_column(spec.name)
            if spec.kind == CATEGORICAL:
                codes = pl.Series(spec.categories, dtype=pl.String)
                column = column.cast(pl.String).replace_strict(
                    codes, pl.Series(range(len(codes)), dtype=pl.Float32), default=None
                )
            columns.append(column.cast(pl.Float32).fill_null(float("nan")).to_numpy())
        if not columns:
            return np.zeros((frame.height, 0), dtype=np.float32)
        return np.ascontiguousarray(np.column_stack(columns), dtype=np.float32)


def _float(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
