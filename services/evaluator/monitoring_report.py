"""The HTML report of one monitoring window: verdict, online metrics over time, drift
per feature against the evaluation's reference, subgroup errors."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.dates import date2num
from matplotlib.figure import Figure

from wavepod.reports import HtmlReport

if TYPE_CHECKING:
    from evaluator.drift import Drift
    from evaluator.health import Health
    from evaluator.online import Window
    from wavepod.metrics import GroupMetrics


def _online_over_time(windows: list[Window], evaluated_mae: float) -> Figure:
    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    starts = date2num([w.start for w in windows])
    axes.plot(starts, [w.mae for w in windows], "o-", label="online MAE")
    axes.xaxis_date()
    if np.isfinite(evaluated_mae):
        axes.axhline(evaluated_mae, linestyle="--", color="grey", label="evaluated MAE")
    axes.set_ylabel("MAE (days)")
    axes.set_title("online error over time")
    axes.tick_params(axis="x", labelrotation=30)
    axes.legend()
    return figure


def _drift_bars(drift: list[Drift], max_psi: float) -> Figure:
    figure = Figure(figsize=(5, max(3.2, 0.25 * len(drift))))
    axes = figure.subplots()
    ordered = sorted(drift, key=lambda d: d.psi)
    colours = ["tab:red" if d.drifted else "tab:blue" for d in ordered]
    axes.barh([d.feature for d in ordered], [d.psi for d in ordered], color=colours)
    axes.axvline(max_psi, linestyle="--", color="grey")
    axes.set_xlabel("PSI (red: drifted)")
    axes.set_title("drift per feature")
    return figure


def _subgroup_bars(groups: list[GroupMetrics]) -> Figure:
    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    labels = [f"{g.dimension}={g.group}" for g in groups]
    axes.bar(np.arange(len(groups)), [g.metrics["mae"] for g in groups])
    axes.set_xticks(np.arange(len(groups)), labels, rotation=40, ha="right")
    axes.set_ylabel("online MAE (days)")
    axes.set_title("online MAE by subgroup")
    return figure


def render(health: Health, since: datetime | None, evaluated_mae: float, max_psi: float) -> str:
    page = HtmlReport(f"{health.model} version {health.version}: monitoring")
    window = f"since {since.isoformat()}" if since else "all logged predictions"
    online = health.online
    page.paragraph(
        f"Window: {window}; {online.predictions:,} answers, {online.labelled:,} with an"
        f" observed outcome ({online.coverage:.0%})."
    )
    if health.reasons:
        page.paragraph("Retrain recommended: " + "; ".join(health.reasons) + ".", "bad")
    else:
        page.paragraph("No retrain recommended.")
    page.heading("Online metrics")
    page.table(
        ["metric", "online", "evaluated"],
        [(k, v, evaluated_mae if k == "mae" else None) for k, v in online.metrics.items()],
    )
    page.heading("Drift")
    page.table(
        ["feature", "PSI", "KS", "KS p-value", "z", "rows", "drifted"],
        [
            (d.feature, d.psi, d.ks_statistic, d.ks_p_value, d.z_score, d.rows, d.drifted)
            for d in sorted(health.drift, key=lambda d: -d.psi)
        ],
    )
    figures = []
    if online.windows:
        figures.append(_online_over_time(online.windows, evaluated_mae))
    if health.drift:
        figures.append(_drift_bars(health.drift, max_psi))
    if online.subgroups:
        figures.append(_subgroup_bars(online.subgroups))
    page.figures(figures)
    return page.render()
