"""The training side of `wavepod.signature`: infer a signature from a training frame and
encode frames (polars), column-wise."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from wavepod.signature import CATEGORICAL, NUMERIC, FeatureSpec, ModelSignature


def infer_signature(
    frame: pl.DataFrame, names: Sequence[str], label: str, feature_set: str
) -> ModelSignature:
    """The signature of `names` as they appear in the training frame."""
    specs = []
    for name in names:
        column = frame.get_column(name)
        nullable = column.null_count() > 0
        if column.dtype in (pl.String, pl.Categorical, pl.Enum):
            categories = tuple(sorted(column.drop_nulls().cast(pl.String).unique().to_list()))
            specs.append(FeatureSpec(name, CATEGORICAL, nullable=nullable, categories=categories))
        else:
            values = column.cast(pl.Float64).drop_nulls().drop_nans()
            lo, hi = (values.min(), values.max()) if values.len() else (None, None)
            specs.append(FeatureSpec(name, NUMERIC, _float(lo), _float(hi), nullable=nullable))
    return ModelSignature(tuple(specs), label, feature_set)


def encode_frame(signature: ModelSignature, frame: pl.DataFrame) -> np.ndarray:
    """float32 [rows, features], the same codes as `ModelSignature.encode_rows`."""
    columns = []
    for spec in signature.features:
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
