"""Drift statistics against scipy on the same data, and the verdicts they lead to."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import rel_entr
from scipy.stats import ks_2samp

from evaluator.drift import (
    EPSILON,
    DriftPolicy,
    _bin_counts,
    compare,
    compare_categories,
    summarize,
    summarize_categories,
)

POLICY = DriftPolicy()


@pytest.mark.parametrize(
    "shift, ties",
    [(0.0, False), (0.3, False), (0.0, True), (1.5, True)],
)
def test_ks_and_psi_agree_with_scipy(shift: float, ties: bool) -> None:
    rng = np.random.default_rng(7)
    reference_values = rng.normal(size=20_000)
    current_values = rng.normal(loc=shift, size=3_000)
    if ties:  # integer-valued features (days supply, counts) tie everywhere
        reference_values = np.round(reference_values * 3)
        current_values = np.round(current_values * 3)
    reference = summarize("x", reference_values)
    drift = compare(reference, current_values, POLICY)

    expected = ks_2samp(reference_values, current_values, method="asymp")
    assert drift.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert drift.ks_p_value == pytest.approx(expected.pvalue, abs=1e-6)

    q = np.maximum(_bin_counts(np.sort(reference_values), reference.edges) / 20_000, EPSILON)
    p = np.maximum(_bin_counts(np.sort(current_values), reference.edges) / 3_000, EPSILON)
    assert drift.psi == pytest.approx(float(np.sum(rel_entr(p, q) + rel_entr(q, p))), abs=1e-9)


def test_verdicts_follow_the_policy() -> None:
    rng = np.random.default_rng(1)
    reference = summarize("days_supply", rng.normal(30, 5, 50_000))
    same = compare(reference, rng.normal(30, 5, 5_000), POLICY)
    assert not same.drifted and same.psi < 0.02 and abs(same.z_score) < 4
    moved = compare(reference, rng.normal(38, 5, 5_000), POLICY)
    assert moved.drifted and moved.psi > 0.2 and moved.z_score > 50
    # Missing values are not part of the distribution; an empty window judges nothing.
    with_gaps = compare(reference, np.array([np.nan, 30.0, 31.0]), POLICY)
    assert with_gaps.rows == 2
    assert not compare(reference, np.array([np.nan]), POLICY).drifted


def test_categorical_psi_counts_new_categories_against_a_floored_share() -> None:
    reference = summarize_categories("channel", ["retail"] * 80 + ["mail"] * 20 + [None] * 5)
    assert reference.counts == {"retail": 80, "mail": 20}
    same = compare_categories(reference, ["retail"] * 8 + ["mail"] * 2, POLICY)
    assert same.psi == pytest.approx(0.0, abs=1e-12) and not same.drifted
    moved = compare_categories(reference, ["retail"] * 4 + ["mail"] * 4 + ["kiosk"] * 2, POLICY)
    q = np.maximum(np.array([0, 20, 80]) / 100, EPSILON)  # kiosk, mail, retail
    p = np.array([0.2, 0.4, 0.4])
    assert moved.psi == pytest.approx(float(np.sum(rel_entr(p, q) + rel_entr(q, p))))
    assert moved.drifted and moved.rows == 10 and np.isnan(moved.ks_statistic)
