"""Builders for the window features feature sets are made of.

Each returns a `Feature` whose expression is evaluated per event row over the entity's
history sorted by event time (`.over(entity)`): "as of this row", including it, so the
point-in-time join (pit.py) decides what a label may see.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from feature.definition import Feature


def last(name: str, column: str, entity: str, dtype: pl.DataType) -> Feature:
    return Feature(name, pl.col(column).over(entity), dtype, f"{column} of the latest event")


def count(name: str, entity: str, event_time: str, days: int) -> Feature:
    events = pl.col(event_time).is_not_null().cast(pl.Int64)
    expr = events.rolling_sum_by(event_time, window_size=f"{days}d").over(entity)
    return Feature(name, expr, pl.Int64(), f"events in the last {days} days", timedelta(days=days))


def mean(name: str, column: str, entity: str, event_time: str, days: int) -> Feature:
    expr = pl.col(column).rolling_mean_by(event_time, window_size=f"{days}d").over(entity)
    return Feature(
        name, expr, pl.Float64(), f"mean {column} over {days} days", timedelta(days=days)
    )


def std(name: str, column: str, entity: str, event_time: str, days: int) -> Feature:
    expr = pl.col(column).rolling_std_by(event_time, window_size=f"{days}d").over(entity)
    return Feature(
        name, expr, pl.Float64(), f"std of {column} over {days} days", timedelta(days=days)
    )


def days_since_first(name: str, entity: str, event_time: str) -> Feature:
    expr = (pl.col(event_time) - pl.col(event_time).min().over(entity)).dt.total_days()
    return Feature(name, expr, pl.Int64(), "days since the entity's first event")
