"""Regression metrics every run reports, for the baseline and the model alike."""

from __future__ import annotations

import numpy as np

# The share of predictions within this many days (label units) of the truth.
WITHIN = 7


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(np.mean(error)),
        f"within_{WITHIN}": float(np.mean(np.abs(error) <= WITHIN)),
    }


def baseline_predictions(
    features: np.ndarray, names: list[str], baseline_feature: str, fallback: float
) -> np.ndarray:
    """The naive prediction: the baseline feature's value (missing -> `fallback`)."""
    if not baseline_feature:
        return np.full(features.shape[0], fallback)
    column = features[:, names.index(baseline_feature)].astype(np.float64)
    return np.where(np.isnan(column), fallback, column)
