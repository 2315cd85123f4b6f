"""Drift of a feature (or of the predictions) between a reference and a current window.

The reference is summarized once, when a model is trained: its values sorted, counts on
fixed bins, mean and standard deviation. Comparing a window then costs one sort of the
window and binary searches into the reference, with no pass over the reference rows:

- PSI over the reference's bins: sum((p - q) * ln(p / q)), shares floored at EPSILON.
- KS: the two-sample statistic sup |F_ref - F_cur|, exact. Both ECDFs are step functions;
  between two consecutive distinct current values F_cur is flat and F_ref only rises, so
  the supremum sits at a current value or just before one. Evaluating F_ref there (two
  binary searches per distinct current value) gives the same D as scipy's ks_2samp over
  the pooled samples; the p-value is scipy's asymptotic one (kstwo, as ks_2samp uses for
  large samples).
- z-score of the current mean against the reference mean and its standard error.

Categorical features get PSI over their categories (a category the reference never saw
counts against a floored share); KS and z are not defined for them (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kstwo

EPSILON = 1e-4  # floor for a bin's share: an empty bin must not make PSI infinite
BINS = 10


@dataclass(frozen=True)
class Reference:
    feature: str
    sorted_values: np.ndarray  # float64, finite, ascending
    edges: np.ndarray  # inner bin edges: bins (-inf, e0], (e0, e1], ..., (e_last, inf)
    counts: np.ndarray  # reference rows per bin
    mean: float
    std: float
    missing: int  # null / NaN rows, not part of the distribution


@dataclass(frozen=True)
class DriftPolicy:
    max_psi: float = 0.2
    max_ks: float = 0.1
    max_abs_z: float = 6.0


@dataclass(frozen=True)
class Drift:
    feature: str
    psi: float
    ks_statistic: float
    ks_p_value: float
    z_score: float
    rows: int
    drifted: bool


def _bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    cumulative = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cumulative, [sorted_values.size])))


def summarize(feature: str, values: np.ndarray, bins: int = BINS) -> Reference:
    values = np.asarray(values, dtype=np.float64)
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        raise ValueError(f"{feature}: the reference has no values")
    inner = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    edges = np.unique(inner)
    return Reference(
        feature,
        finite,
        edges,
        _bin_counts(finite, edges),
        float(finite.mean()),
        float(finite.std()),
        int(values.size - finite.size),
    )


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    q = np.maximum(reference_counts / max(reference_counts.sum(), 1), EPSILON)
    p = np.maximum(current_counts / max(current_counts.sum(), 1), EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


def ks_statistic(reference_sorted: np.ndarray, current_sorted: np.ndarray) -> float:
    n, m = reference_sorted.size, current_sorted.size
    distinct = np.concatenate(([True], current_sorted[1:] != current_sorted[:-1]))
    points = current_sorted[distinct]
    at = np.abs(
        np.searchsorted(reference_sorted, points, side="right") / n
        - np.searchsorted(current_sorted, points, side="right") / m
    )
    before = np.abs(
        np.searchsorted(reference_sorted, points, side="left") / n
        - np.searchsorted(current_sorted, points, side="left") / m
    )
    return float(max(at.max(), before.max()))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    big, small = max(n, m), min(n, m)
    return float(kstwo.sf(statistic, np.round(big * small / (big + small))))


def compare(reference: Reference, current: np.ndarray, policy: DriftPolicy) -> Drift:
    current = np.asarray(current, dtype=np.float64)
    window = np.sort(current[np.isfinite(current)])  # the one pass over the window
    if window.size == 0:
        nan = float("nan")
        return Drift(reference.feature, nan, nan, nan, nan, 0, False)
    value_psi = psi(reference.counts, _bin_counts(window, reference.edges))
    d = ks_statistic(reference.sorted_values, window)
    error = reference.std / math.sqrt(window.size)
    z = (float(window.mean()) - reference.mean) / error if error > 0 else 0.0
    return Drift(
        reference.feature,
        value_psi,
        d,
        ks_p_value(d, reference.sorted_values.size, window.size),
        z,
        int(window.size),
        value_psi > policy.max_psi or d > policy.max_ks or abs(z) > policy.max_abs_z,
    )


def compare_all(
    references: Sequence[Reference], current: dict[str, np.ndarray], policy: DriftPolicy
) -> list[Drift]:
    return [compare(r, current[r.feature], policy) for r in references if r.feature in current]


@dataclass(frozen=True)
class CategoricalReference:
    feature: str
    counts: dict[str, int]  # rows per category (missing values left out)


def summarize_categories(feature: str, values: Sequence[object]) -> CategoricalReference:
    counts: dict[str, int] = {}
    for value in values:
        if value is not None:
            counts[str(value)] = counts.get(str(value), 0) + 1
    return CategoricalReference(feature, counts)


def compare_categories(
    reference: CategoricalReference, current: Sequence[object], policy: DriftPolicy
) -> Drift:
    window = summarize_categories(reference.feature, current).counts
    rows = sum(window.values())
    nan = float("nan")
    if rows == 0:
        return Drift(reference.feature, nan, nan, nan, nan, 0, False)
    categories = sorted(set(reference.counts) | set(window))
    value_psi = psi(
        np.array([reference.counts.get(c, 0) for c in categories], dtype=np.float64),
        np.array([window.get(c, 0) for c in categories], dtype=np.float64),
    )
    return Drift(reference.feature, value_psi, nan, nan, nan, rows, value_psi > policy.max_psi)
