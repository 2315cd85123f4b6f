"""The promotion gate: declarative rules a candidate must pass to become champion.

Each rule yields a result with the observed figure, its threshold and a sentence that
says why, so a failed gate explains itself. Rules never skip silently: a rule that
cannot be judged (no champion yet, a subgroup too small) passes and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wavepod.metrics import GroupMetrics


@dataclass(frozen=True)
class GatePolicy:
    # Relative MAE improvement over the champion (or, with none, over the baseline).
    min_improvement: float = 0.0
    # No subgroup's MAE may exceed the champion's on it by more than this share.
    subgroup_tolerance: float = 0.05
    min_subgroup_rows: int = 30  # smaller subgroups are reported, not judged
    max_parity_diff: float = 1e-4  # ONNX vs native, from the trainer's parity check
    latency_budget_ms: float = 5.0  # p95 of one-row calls on this machine's CPU


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    observed: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class GateInputs:
    candidate_mae: float
    reference_mae: float  # the champion's, or the baseline's when there is no champion
    reference: str  # "champion version 3" or "baseline"
    candidate_groups: Sequence[GroupMetrics]
    champion_groups: Sequence[GroupMetrics]  # empty without a champion
    parity_diff: float  # NaN: the version records none
    latency_p95_ms: float


def improvement_gate(policy: GatePolicy, inputs: GateInputs) -> GateResult:
    gain = (inputs.reference_mae - inputs.candidate_mae) / inputs.reference_mae
    return GateResult(
        "min_improvement",
        gain >= policy.min_improvement,
        gain,
        policy.min_improvement,
        f"MAE {inputs.candidate_mae:.3f} vs {inputs.reference} {inputs.reference_mae:.3f}:"
        f" {gain:+.1%} (needs {policy.min_improvement:+.1%})",
    )


def subgroup_gate(policy: GatePolicy, inputs: GateInputs) -> GateResult:
    if not inputs.champion_groups:
        return GateResult(
            "subgroup_tolerance", True, 0.0, policy.subgroup_tolerance, "no champion to compare"
        )
    champion = {(g.dimension, g.group): g for g in inputs.champion_groups}
    worst: tuple[float, str] = (float("-inf"), "")
    for group in inputs.candidate_groups:
        theirs = champion.get((group.dimension, group.group))
        if theirs is None or group.rows < policy.min_subgroup_rows or theirs.metrics["mae"] == 0:
            continue
        ratio = group.metrics["mae"] / theirs.metrics["mae"] - 1
        if ratio > worst[0]:
            worst = (
                ratio,
                f"{group.dimension}={group.group} ({group.rows} rows): MAE"
                f" {group.metrics['mae']:.3f} vs champion {theirs.metrics['mae']:.3f}",
            )
    if not worst[1]:
        return GateResult(
            "subgroup_tolerance",
            True,
            0.0,
            policy.subgroup_tolerance,
            f"no subgroup has {policy.min_subgroup_rows} rows",
        )
    return GateResult(
        "subgroup_tolerance",
        worst[0] <= policy.subgroup_tolerance,
        worst[0],
        policy.subgroup_tolerance,
        f"worst subgroup {worst[1]} ({worst[0]:+.1%}; at most {policy.subgroup_tolerance:+.1%})",
    )


def parity_gate(policy: GatePolicy, inputs: GateInputs) -> GateResult:
    recorded = inputs.parity_diff == inputs.parity_diff  # not NaN
    return GateResult(
        "parity",
        recorded and inputs.parity_diff <= policy.max_parity_diff,
        inputs.parity_diff,
        policy.max_parity_diff,
        (
            f"ONNX vs native max |diff| {inputs.parity_diff:.3g}"
            if recorded
            else "the version records no parity check"
        ),
    )


def latency_gate(policy: GatePolicy, inputs: GateInputs) -> GateResult:
    return GateResult(
        "latency_budget",
        inputs.latency_p95_ms <= policy.latency_budget_ms,
        inputs.latency_p95_ms,
        policy.latency_budget_ms,
        f"p95 of one-row calls {inputs.latency_p95_ms:.2f} ms"
        f" (budget {policy.latency_budget_ms:g} ms)",
    )


RULES = (improvement_gate, subgroup_gate, parity_gate, latency_gate)


def apply_gates(policy: GatePolicy, inputs: GateInputs) -> list[GateResult]:
    return [rule(policy, inputs) for rule in RULES]
