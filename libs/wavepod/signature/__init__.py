"""A model's input contract: which features, in what order, of what kind and range.

The trainer derives it from the training data (`wavepod.signature.frames`) and records
it with the model (MLflow model metadata, and the Triton config's parameters); the
gateway validates requests against it and encodes rows with `encode_rows`. Both encoders
map a category to its index in `categories` and anything missing or unknown to NaN, so
training and serving agree on feature order and codes (checked by a test).

This module needs only numpy: the gateway imports it without a dataframe stack.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

# Where the signature travels in a logged MLflow model (its MLmodel `metadata`).
MLFLOW_METADATA_KEY = "wavepod_signature"
# ... and in a Triton model config (its `parameters`), where clients of a real Triton
# read it too.
TRITON_CONFIG_PARAMETER = "wavepod.signature"

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
    _codes: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._codes.update({c: float(i) for i, c in enumerate(self.categories)})

    def code(self, value: str) -> float:
        return self._codes.get(value, math.nan)


@dataclass(frozen=True)
class Violation:
    field: str
    description: str


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
        raw = asdict(self)
        for f in raw["features"]:
            f.pop("_codes")
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSignature:
        raw = json.loads(text)
        features = tuple(
            FeatureSpec(**{**f, "categories": tuple(f["categories"])}) for f in raw.pop("features")
        )
        return cls(features=features, **raw)

    def encode_rows(self, rows: Sequence[Mapping[str, object]]) -> np.ndarray:
        """float32 [rows, features] from row mappings (checked with `violations` first)."""
        out = np.full((len(rows), len(self.features)), np.nan, dtype=np.float32)
        for j, spec in enumerate(self.features):
            for i, row in enumerate(rows):
                value = row.get(spec.name)
                if value is None:
                    continue
                out[i, j] = spec.code(value) if spec.kind == CATEGORICAL else float(value)  # type: ignore[arg-type]
        return out

    def violations(
        self, rows: Sequence[Mapping[str, object]], range_slack: float = 0.0, prefix: str = "rows"
    ) -> list[Violation]:
        """What is wrong with each row: unknown names, missing required values, wrong
        types, unknown categories, numbers outside the training range widened by
        `range_slack` times its width on each side."""
        specs = {f.name: f for f in self.features}
        found: list[Violation] = []
        for i, row in enumerate(rows):
            for name in row:
                if name not in specs:
                    found.append(
                        Violation(f"{prefix}[{i}].{name}", "is not a feature of the model")
                    )
            for spec in self.features:
                where = f"{prefix}[{i}].{spec.name}"
                value = row.get(spec.name)
                if value is None:
                    if not spec.nullable:
                        found.append(Violation(where, "is required"))
                    continue
                if spec.kind == CATEGORICAL:
                    if not isinstance(value, str):
                        found.append(
                            Violation(where, f"must be a string, got {type(value).__name__}")
                        )
                    elif math.isnan(spec.code(value)):
                        known = ", ".join(spec.categories[:10])
                        found.append(Violation(where, f"{value!r} is not one of: {known}"))
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    found.append(Violation(where, f"must be a number, got {type(value).__name__}"))
                    continue
                if math.isnan(value) or math.isinf(value):
                    found.append(Violation(where, "must be finite"))
                elif spec.minimum is not None and spec.maximum is not None:
                    slack = (spec.maximum - spec.minimum) * range_slack
                    if not spec.minimum - slack <= value <= spec.maximum + slack:
                        found.append(
                            Violation(
                                where,
                                f"{value:g} is outside the training range"
                                f" [{spec.minimum:g}, {spec.maximum:g}]",
                            )
                        )
        return found
