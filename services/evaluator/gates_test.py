"""Every gate rule, passing and failing, with the figures in its explanation."""

from __future__ import annotations

from dataclasses import replace

from evaluator.gates import GateInputs, GatePolicy, apply_gates
from wavepod.metrics import GroupMetrics

POLICY = GatePolicy(
    min_improvement=0.02,
    subgroup_tolerance=0.05,
    min_subgroup_rows=30,
    max_parity_diff=1e-4,
    latency_budget_ms=5.0,
)


def _groups(maes: dict[str, float], rows: int = 100) -> list[GroupMetrics]:
    return [GroupMetrics("payer", g, rows, {"mae": mae}) for g, mae in maes.items()]


GOOD = GateInputs(
    candidate_mae=9.0,
    reference_mae=10.0,
    reference="champion version 1",
    candidate_groups=_groups({"commercial": 8.0, "medicare": 10.2}),
    champion_groups=_groups({"commercial": 9.0, "medicare": 10.0}),
    parity_diff=3e-5,
    latency_p95_ms=0.4,
)


def _results(inputs: GateInputs) -> dict[str, tuple[bool, str]]:
    return {r.gate: (r.passed, r.detail) for r in apply_gates(POLICY, inputs)}


def test_a_better_model_passes_every_gate() -> None:
    results = _results(GOOD)
    assert all(passed for passed, _ in results.values()), results
    assert results["min_improvement"][1] == (
        "MAE 9.000 vs champion version 1 10.000: +10.0% (needs +2.0%)"
    )


def test_too_small_an_improvement_fails_with_the_figures() -> None:
    passed, detail = _results(replace(GOOD, candidate_mae=9.9))["min_improvement"]
    assert not passed and "+1.0% (needs +2.0%)" in detail


def test_a_subgroup_worse_than_the_tolerance_fails_naming_it() -> None:
    worse = replace(GOOD, candidate_groups=_groups({"commercial": 8.0, "medicare": 11.0}))
    passed, detail = _results(worse)["subgroup_tolerance"]
    assert not passed
    assert detail == (
        "worst subgroup payer=medicare (100 rows): MAE 11.000 vs champion 10.000"
        " (+10.0%; at most +5.0%)"
    )
    # Too small to judge: reported, not held against the candidate.
    small = replace(
        worse,
        candidate_groups=_groups({"medicare": 11.0}, rows=10),
        champion_groups=_groups({"medicare": 10.0}, rows=10),
    )
    assert _results(small)["subgroup_tolerance"] == (True, "no subgroup has 30 rows")
    first = replace(GOOD, champion_groups=[])
    assert _results(first)["subgroup_tolerance"] == (True, "no champion to compare")


def test_parity_must_be_recorded_and_within_tolerance() -> None:
    assert not _results(replace(GOOD, parity_diff=2e-3))["parity"][0]
    missing = _results(replace(GOOD, parity_diff=float("nan")))["parity"]
    assert missing == (False, "the version records no parity check")


def test_latency_over_budget_fails() -> None:
    passed, detail = _results(replace(GOOD, latency_p95_ms=7.5))["latency_budget"]
    assert not passed and detail == "p95 of one-row calls 7.50 ms (budget 5 ms)"
