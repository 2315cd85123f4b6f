"""Dataset and batch profiles: null %, cardinality, min/max/quantiles, and drift against
the previous batch (null-rate change, mean shift in standard deviations, share of values
that failed their type). Rendered as an RPC answer and as an HTML report with plots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl
from matplotlib.figure import Figure

from wavepod.reports import HtmlReport

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class ColumnProfile:
    column: str
    dtype: str
    null_fraction: float
    distinct_count: int
    min: str
    max: str
    mean: float | None = None
    stddev: float | None = None
    quantiles: tuple[float, ...] = ()
    type_error_fraction: float = 0.0
    null_fraction_change: float | None = None
    mean_shift_stddevs: float | None = None


@dataclass(frozen=True)
class Profile:
    dataset: str
    scope: str  # "dataset" or a batch id
    rows: int
    columns: tuple[ColumnProfile, ...]


def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and dtype != pl.Boolean


def profile_frame(
    dataset: str,
    scope: str,
    frame: pl.DataFrame,
    previous: pl.DataFrame | None = None,
    type_errors: Mapping[str, int] | None = None,
    rows_read: int | None = None,
) -> Profile:
    rows = frame.height
    read = rows_read or rows or 1
    profiles = []
    for name, dtype in frame.schema.items():
        series = frame[name]
        nulls = series.null_count() / rows if rows else 0.0
        values = series.drop_nulls()
        low = str(values.min()) if len(values) else ""
        high = str(values.max()) if len(values) else ""
        mean = stddev = None
        quantiles: tuple[float, ...] = ()
        if _numeric(dtype) and len(values):
            mean, stddev = float(values.mean()), float(values.std() or 0.0)  # type: ignore[arg-type]
            quantiles = tuple(float(values.quantile(q) or 0.0) for q in QUANTILES)
        change = shift = None
        if previous is not None and name in previous.columns and previous.height:
            change = nulls - previous[name].null_count() / previous.height
            if mean is not None and _numeric(previous.schema[name]):
                before = previous[name].drop_nulls()
                spread = float(before.std() or 0.0)  # type: ignore[arg-type]
                if len(before) and spread > 0:
                    shift = (mean - float(before.mean())) / spread  # type: ignore[arg-type]
        profiles.append(
            ColumnProfile(
                column=name,
                dtype=str(dtype),
                null_fraction=nulls,
                distinct_count=series.n_unique(),
                min=low,
                max=high,
                mean=mean,
                stddev=stddev,
                quantiles=quantiles,
                type_error_fraction=(type_errors or {}).get(f"type:{name}", 0) / read,
                null_fraction_change=change,
                mean_shift_stddevs=shift,
            )
        )
    return Profile(dataset, scope, rows, tuple(profiles))


def render_html(profile: Profile, frame: pl.DataFrame) -> str:
    report = HtmlReport(f"Profile of {profile.dataset} ({profile.scope})")
    report.paragraph(f"{profile.rows:,} rows, {len(profile.columns)} columns")
    report.heading("Columns")
    report.table(
        ["column", "type", "null %", "distinct", "min", "max", "mean", "stddev", "p50"],
        [
            [
                c.column,
                c.dtype,
                100 * c.null_fraction,
                c.distinct_count,
                c.min,
                c.max,
                c.mean,
                c.stddev,
                c.quantiles[2] if c.quantiles else None,
            ]
            for c in profile.columns
        ],
    )
    drifted = [c for c in profile.columns if c.null_fraction_change is not None]
    if drifted:
        report.heading("Drift against the previous batch")
        report.table(
            ["column", "null % change", "mean shift (std devs)", "type errors %"],
            [
                [
                    c.column,
                    100 * (c.null_fraction_change or 0.0),
                    c.mean_shift_stddevs,
                    100 * c.type_error_fraction,
                ]
                for c in drifted
            ],
        )
    report.heading("Distributions")
    figures = []
    nulls = Figure(figsize=(5, 3))
    axes = nulls.subplots()
    axes.barh([c.column for c in profile.columns], [100 * c.null_fraction for c in profile.columns])
    axes.set_xlabel("null %")
    axes.set_title("Missing values")
    figures.append(nulls)
    for name, dtype in frame.schema.items():
        if _numeric(dtype) and frame[name].drop_nulls().len():
            figure = Figure(figsize=(4, 3))
            axes = figure.subplots()
            axes.hist(frame[name].drop_nulls().to_numpy(), bins=40, color="#3b6ea5")
            axes.set_title(name)
            figures.append(figure)
    report.figures(figures)
    return report.render()
