"""What a person reads about a run: plots, an HTML report and a markdown model card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from trainer.search import Trial
from wavepod.reports import HtmlReport


def residual_figure(truth: np.ndarray, predicted: np.ndarray, label: str) -> Figure:
    figure = Figure(figsize=(10, 4))
    scatter, histogram = figure.subplots(1, 2)
    residual = predicted - truth
    scatter.scatter(truth, residual, s=4, alpha=0.3)
    scatter.axhline(0, color="black", linewidth=0.8)
    scatter.set(xlabel=f"true {label}", ylabel="prediction - truth", title="Residuals (holdout)")
    histogram.hist(residual, bins=60)
    histogram.set(xlabel="prediction - truth", ylabel="rows", title="Residual distribution")
    return figure


def importance_figure(names: Sequence[str], gains: np.ndarray) -> Figure:
    order = np.argsort(gains)
    figure = Figure(figsize=(6, max(3, 0.28 * len(names))))
    axes = figure.subplots()
    axes.barh([names[i] for i in order], gains[order])
    axes.set(xlabel="total gain", title="Feature importance")
    return figure


def search_figure(trials: Sequence[Trial]) -> Figure:
    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    maes = [t.valid_mae for t in trials]
    axes.plot(range(len(maes)), maes, "o", alpha=0.5, label="trial")
    axes.plot(range(len(maes)), np.minimum.accumulate(maes), label="best so far")
    axes.set(xlabel="trial", ylabel="validation MAE", title="Optuna search")
    axes.legend()
    return figure


def write_plots(folder: Path, figures: Mapping[str, Figure]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=90, bbox_inches="tight")


def html_report(
    title: str, metrics: Mapping[str, Mapping[str, float]], figures: Sequence[Figure]
) -> str:
    report = HtmlReport(title)
    report.heading("Holdout metrics")
    keys = sorted({k for m in metrics.values() for k in m})
    report.table(
        ["model", *keys], [[name, *(m.get(k) for k in keys)] for name, m in metrics.items()]
    )
    report.heading("Plots")
    report.figures(figures)
    return report.render()


def model_card(
    model_name: str,
    lineage: Mapping[str, str],
    splits: Mapping[str, str],
    metrics: Mapping[str, Mapping[str, float]],
    best_params: Mapping[str, object],
    features: Sequence[str],
    label: str,
) -> str:
    rows = "\n".join(
        f"| {name} | " + " | ".join(f"{m[k]:.4g}" for k in sorted(m)) + " |"
        for name, m in metrics.items()
    )
    keys = sorted(next(iter(metrics.values())))
    return "\n".join(
        [
            f"# Model card: {model_name}",
            "",
            f"Predicts `{label}` from {len(features)} features of"
            f" `{lineage.get('feature_set', '')}`.",
            "Gradient-boosted trees (LightGBM), tuned with Optuna, exported to ONNX and checked",
            "against the native model on the holdout before registration.",
            "",
            "## Data and lineage",
            "",
            *(f"- **{k}**: `{v}`" for k, v in lineage.items()),
            *(f"- **{k} rows by label time**: {v}" for k, v in splits.items()),
            "",
            "## Holdout metrics",
            "",
            "| model | " + " | ".join(keys) + " |",
            "|---|" + "---|" * len(keys),
            rows,
            "",
            "## Hyper-parameters (best trial)",
            "",
            *(f"- {k}: {v}" for k, v in best_params.items()),
            "",
            "## Features",
            "",
            ", ".join(f"`{f}`" for f in features),
            "",
            "## Caveats",
            "",
            "- Rows without an observed label (censored: no next event within the horizon)",
            "  are left out of training and evaluation; the model predicts the gap given that",
            "  a next event happens.",
            "- Splits are by time; the holdout is the most recent period. Performance on later",
            "  data is watched by the evaluator (online metrics, drift).",
            "",
        ]
    )
