"""Regression metrics: what the trainer reports for the baseline and the model alike, and
what the evaluator compares per subgroup and across the range of predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class GroupMetrics:
    dimension: str  # e.g. "payer"
    group: str  # e.g. "medicare"
    rows: int
    metrics: dict[str, float]


def subgroup_metrics(
    truth: np.ndarray, predicted: np.ndarray, dimension: str, groups: Sequence[object]
) -> list[GroupMetrics]:
    """regression_metrics per value of one subgroup column (missing values: "(none)")."""
    labels = np.array(["(none)" if g is None else str(g) for g in groups])
    return [
        GroupMetrics(
            dimension,
            str(group),
            int(mask.sum()),
            regression_metrics(truth[mask], predicted[mask]),
        )
        for group in sorted(set(labels.tolist()))
        for mask in [labels == group]
    ]


def calibration(truth: np.ndarray, predicted: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean prediction, mean truth and mean error per decile of the prediction: where in
    its range a model runs early or late."""
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    edges = np.unique(np.quantile(predicted, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(max(len(edges) - 1, 1)):
        mask = which == b
        if mask.any():
            out.append(
                {
                    "from": float(edges[b]),
                    "to": float(edges[min(b + 1, len(edges) - 1)]),
                    "rows": float(mask.sum()),
                    "mean_predicted": float(predicted[mask].mean()),
                    "mean_truth": float(truth[mask].mean()),
                    "mean_error": float((predicted[mask] - truth[mask]).mean()),
                }
            )
    return out
