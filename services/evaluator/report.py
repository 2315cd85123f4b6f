"""The evaluation's HTML report: verdict, gates, metrics, subgroups, calibration, plots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from wavepod.reports import HtmlReport

if TYPE_CHECKING:
    from evaluator.evaluation import Evaluation


def _residuals(evaluation: Evaluation) -> Figure:
    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    values = [np.asarray(v) for v in evaluation.residuals.values()]
    low, high = np.percentile(np.concatenate(values), [1, 99]) if values else (0, 1)
    for name, residuals in evaluation.residuals.items():
        axes.hist(residuals, bins=60, range=(low, high), alpha=0.5, label=name)
    axes.set_xlabel("prediction - truth (days)")
    axes.set_title("residuals")
    axes.legend()
    return figure


def _subgroup_bars(evaluation: Evaluation, dimension: str) -> Figure:
    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    groups = [g for g in evaluation.candidate_groups if g.dimension == dimension]
    champion = {g.group: g.metrics["mae"] for g in evaluation.champion_groups}
    positions = np.arange(len(groups))
    axes.bar(positions - 0.2, [g.metrics["mae"] for g in groups], 0.4, label="candidate")
    if champion:
        axes.bar(
            positions + 0.2, [champion.get(g.group, 0.0) for g in groups], 0.4, label="champion"
        )
    axes.set_xticks(positions, [g.group for g in groups], rotation=30, ha="right")
    axes.set_ylabel("MAE (days)")
    axes.set_title(f"MAE by {dimension}")
    axes.legend()
    return figure


def _calibration(evaluation: Evaluation) -> Figure:
    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    bins = evaluation.calibration
    axes.plot([b["mean_predicted"] for b in bins], [b["mean_truth"] for b in bins], "o-")
    edge = max([b["mean_predicted"] for b in bins] + [b["mean_truth"] for b in bins] + [1.0])
    axes.plot([0, edge], [0, edge], "--", color="grey")
    axes.set_xlabel("mean prediction (decile)")
    axes.set_ylabel("mean truth")
    axes.set_title("calibration")
    return figure


def render(evaluation: Evaluation) -> str:
    page = HtmlReport(f"{evaluation.model} version {evaluation.candidate}: evaluation")
    verdict = "passed" if evaluation.passed else "FAILED: " + ", ".join(evaluation.failed_gates())
    page.paragraph(
        f"{verdict}. Against {evaluation.reference} on {evaluation.rows:,} labelled rows of"
        f" {evaluation.dataset_uri}.",
        "" if evaluation.passed else "bad",
    )
    page.heading("Gates")
    page.table(
        ["gate", "passed", "observed", "threshold", "why"],
        [
            (g.gate, "yes" if g.passed else "NO", g.observed, g.threshold, g.detail)
            for g in evaluation.gates
        ],
    )
    page.heading("Metrics")
    page.table(
        ["metric", "candidate", evaluation.reference],
        [
            (k, v, evaluation.reference_metrics.get(k))
            for k, v in evaluation.candidate_metrics.items()
        ],
    )
    page.heading("Subgroups")
    champion = {(g.dimension, g.group): g.metrics["mae"] for g in evaluation.champion_groups}
    page.table(
        ["subgroup", "rows", "MAE", "champion MAE", "within 7 d"],
        [
            (
                f"{g.dimension}={g.group}",
                g.rows,
                g.metrics["mae"],
                champion.get((g.dimension, g.group)),
                g.metrics["within_7"],
            )
            for g in evaluation.candidate_groups
        ],
    )
    page.paragraph(
        "Fairness gaps (widest MAE difference between judged groups): "
        + (", ".join(f"{k} {v:.2f} d" for k, v in evaluation.fairness_gaps.items()) or "none")
    )
    dimensions = sorted({g.dimension for g in evaluation.candidate_groups})
    page.figures(
        [_residuals(evaluation), _calibration(evaluation)]
        + [_subgroup_bars(evaluation, d) for d in dimensions]
    )
    return page.render()
