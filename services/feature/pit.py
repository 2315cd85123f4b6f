"""Point-in-time-correct joins: features as they were known when each label happened.

For a label of entity `e` at time `t`, a feature row of `e` is eligible only if it was
observed strictly before `t` (`event_time < t`; an event dated by day only counts as
observed at the end of its day when labels carry times) *and* had been ingested strictly
before `t` (`ingested_at < t`): late-arriving data that the system could not have known at `t`
must not leak into training. Among eligible rows the one with the latest event time
wins; ties go to the latest ingestion, then to the later row of the input.

How it stays vectorized: a row becomes *available* at `max(event_time, ingested_at)`.
Sorting each entity's rows by availability and taking a running maximum of their
(event time, ingestion) rank gives, at every availability instant, the best row known
so far; one as-of join (strictly before `t`) of the labels onto that running best, then
an equi-join on the rank, fetches the winning row.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

HAS_HISTORY = "has_history"
_RANK, _AVAILABLE, _BEST = "__rank", "__available", "__best_rank"


def point_in_time_join(
    labels: pl.DataFrame,
    features: pl.DataFrame,
    *,
    entity: str,
    label_time: str,
    feature_time: str,
    ingested_at: str | None = None,
    feature_columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """`labels` with the point-in-time feature values appended (null when the entity had
    no eligible history; `has_history` says which), in the labels' original order."""
    columns = list(
        feature_columns
        or [c for c in features.columns if c not in (entity, feature_time, ingested_at)]
    )
    clash = [c for c in columns if c in labels.columns]
    if clash:
        raise ValueError(f"feature columns {clash} also exist in the labels")
    time_type = labels.schema[label_time]
    known = pl.col(feature_time).cast(time_type)
    if features.schema[feature_time] == pl.Date and time_type != pl.Date:
        # A dated event may have happened at any hour of its day: known once the day ends.
        known = known + pl.duration(days=1)
    ingested = pl.col(ingested_at).cast(time_type) if ingested_at else known

    rows = (
        features.select(entity, feature_time, *([ingested_at] if ingested_at else []), *columns)
        .with_columns(
            known.alias("__known"),
            pl.col(feature_time).cast(time_type),
            ingested.alias("__ingested"),
        )
        .with_row_index("__order")
        # Rank by what "latest" means: event time, then ingestion, then input order.
        .sort(entity, feature_time, "__ingested", "__order")
        .with_columns(pl.int_range(pl.len()).over(entity).alias(_RANK))
        .with_columns(pl.max_horizontal("__known", "__ingested").alias(_AVAILABLE))
    )
    running_best = (
        rows.select(entity, _AVAILABLE, _RANK)
        .sort(entity, _AVAILABLE, _RANK)
        .with_columns(pl.col(_RANK).cum_max().over(entity).alias(_BEST))
        # Several rows may become available at the same instant: keep the last state.
        .group_by(entity, _AVAILABLE, maintain_order=True)
        .agg(pl.col(_BEST).last())
        .sort(_AVAILABLE)
    )
    keyed = labels.with_row_index("__label").sort(label_time)
    as_of = keyed.join_asof(
        running_best,
        left_on=label_time,
        right_on=_AVAILABLE,
        by=entity,
        strategy="backward",
        allow_exact_matches=False,  # strictly before the label
        check_sortedness=False,  # sorted above; polars cannot check within `by` groups
    )
    joined = as_of.join(
        rows.select(entity, pl.col(_RANK).alias(_BEST), *columns),
        on=[entity, _BEST],
        how="left",
    )
    return (
        joined.with_columns(pl.col(_BEST).is_not_null().alias(HAS_HISTORY))
        .sort("__label")
        .drop("__label", _AVAILABLE, _BEST)
    )
