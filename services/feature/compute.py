"""Evaluating a feature set over its sources (lazily), and its labels.

One output row per event: the entity's features as of that event, including it, plus
`available_at`: the first moment every row those features read was known (see lake.py),
which is what the point-in-time join compares with a label's time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from feature.definition import Feature, FeatureSet
from wavepod.lake import INGESTED_AT

AVAILABLE_AT = "available_at"
CENSORED = "censored"
CENSOR_REASON = "censor_reason"
LABEL_TIME = "label_time"


def feature_frame(
    feature_set: FeatureSet,
    events: pl.LazyFrame,
    dimensions: Mapping[str, pl.LazyFrame],
    late_rows: bool = True,
) -> pl.LazyFrame:
    """`late_rows=False` promises every event is history (no `__ingested_at` values): each
    row is then known at its own event time, which saves two window passes."""
    fs = feature_set
    frame = events
    for join in fs.joins:
        # Dimension keys are unique in the lake (ingest enforces primary keys); `unique`
        # only guards against a lake written by something else.
        latest = dimensions[join.dataset].select(join.on, *join.columns).unique(join.on)
        frame = frame.join(latest, on=join.on, how="left")
    # By time (then row id for events of the same time): window expressions see each
    # entity's events in order, and the output comes out grouped by period, so writing
    # partitions takes slices rather than a gather. Entities need no sort of their own.
    order = [fs.event_time, *([fs.row_id] if fs.row_id else [])]
    frame = frame.sort(order, maintain_order=True)
    for stage in _stages(fs.derived):
        frame = frame.with_columns(d.expr.alias(d.name) for d in stage)
    event_time = pl.col(fs.event_time).cast(pl.Datetime("us"))
    if late_rows:
        # Known once every event of the group up to this time is known (same day too).
        group = fs.availability_group or fs.entity_key
        known = pl.coalesce(pl.col(INGESTED_AT), event_time).max().over(group, fs.event_time)
        frame = frame.with_columns(known.alias(AVAILABLE_AT)).with_columns(
            pl.col(AVAILABLE_AT).cum_max().over(group, order_by=fs.event_time)
        )
    else:
        frame = frame.with_columns(event_time.alias(AVAILABLE_AT))
    frame = frame.with_columns(*(f.expr.cast(f.dtype).alias(f.name) for f in fs.features))
    return frame.select(fs.entity_key, *order, AVAILABLE_AT, *fs.feature_names)


def _stages(derived: Sequence[Feature]) -> list[list[Feature]]:
    """Derived columns grouped so that each group only reads columns of earlier groups:
    one `with_columns` per group lets polars compute a group's columns in parallel."""
    stages: list[list[Feature]] = []
    level: dict[str, int] = {}
    for feature in derived:
        reads = [level[n] for n in feature.expr.meta.root_names() if n in level]
        depth = max(reads, default=-1) + 1
        level[feature.name] = depth
        if depth == len(stages):
            stages.append([])
        stages[depth].append(feature)
    return stages


def labels(feature_set: FeatureSet, events: pl.LazyFrame) -> pl.LazyFrame:
    """Label rows for the set's `TimeToNextEvent` label: one per entity and event day."""
    fs, label = feature_set, feature_set.label
    if label is None:
        raise ValueError(f"feature set {fs.ref} defines no label")
    day = pl.col(fs.event_time).cast(pl.Date)
    days = (
        events.select(pl.col(fs.entity_key), day.alias(fs.event_time))
        .unique()
        .sort(fs.entity_key, fs.event_time)
    )
    data_end = pl.col(fs.event_time).max()
    following = pl.col(fs.event_time).shift(-1).over(fs.entity_key)
    gap = (following - pl.col(fs.event_time)).dt.total_days()
    observed = following.is_not_null() & (gap <= label.horizon_days)
    horizon_seen = (data_end - pl.col(fs.event_time)).dt.total_days() >= label.horizon_days
    return days.with_columns(
        (pl.col(fs.event_time) + pl.duration(days=1)).alias(LABEL_TIME),
        pl.when(observed).then(gap).cast(pl.Float64).alias(label.name),
        (~observed).alias(CENSORED),
        pl.when(observed)
        .then(pl.lit(None, pl.String))
        .when(horizon_seen | following.is_not_null())
        .then(pl.lit("no_next_event_within_horizon"))
        .otherwise(pl.lit("data_ends_before_horizon"))
        .alias(CENSOR_REASON),
    )
