"""Per-feature summaries that merge across partitions and compare cheaply later.

A summary is a long table (partition, feature, kind, key, value) of additive parts:
row and null counts, sum and sum of squares (mean/std), min/max, counts per histogram
bin over fixed edges, counts per category. Merging partitions is a group-by sum (min/max
for the extremes), so a materialization's baseline is the merge of its partitions and a
drift check later needs only the current window's counts on the baseline's edges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from feature.definition import Feature

PARTITION = "partition"
SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    PARTITION: pl.String,
    "feature": pl.String,
    "kind": pl.String,
    "key": pl.String,
    "value": pl.Float64,
}
_ADDITIVE = ("rows", "nulls", "sum", "sumsq", "bin", "category")
_QUANTILES = [i / 20 for i in range(1, 20)]


@dataclass(frozen=True)
class FeatureStats:
    feature: str
    rows: int
    null_fraction: float
    mean: float | None
    stddev: float | None
    minimum: float | None
    maximum: float | None
    bin_edges: tuple[float, ...]  # len(bin_counts) + 1, outermost -inf and +inf
    bin_counts: tuple[int, ...]
    category_counts: Mapping[str, int]


def is_numeric(feature: Feature) -> bool:
    return feature.dtype.is_numeric()


def choose_edges(frame: pl.DataFrame, features: Sequence[Feature]) -> dict[str, list[float]]:
    """Inner bin edges per numeric feature: its distinct 5%..95% quantiles."""
    numeric = [f.name for f in features if is_numeric(f)]
    if not numeric or frame.height == 0:
        return {name: [] for name in numeric}
    quantiles = frame.select(
        pl.concat_list(pl.col(name).cast(pl.Float64).quantile(q) for q in _QUANTILES).alias(name)
        for name in numeric
    ).row(0, named=True)
    return {
        name: sorted({v for v in (values or []) if v is not None and math.isfinite(v)})
        for name, values in quantiles.items()
    }


def summarize(
    frame: pl.DataFrame,
    features: Sequence[Feature],
    edges: Mapping[str, Sequence[float]],
    partition: pl.Expr | None = None,
) -> pl.DataFrame:
    """The summary of `frame`, one set of parts per partition (all rows when none)."""
    keyed = frame.lazy().with_columns(
        (partition if partition is not None else pl.lit("all")).cast(pl.String).alias(PARTITION)
    )
    parts: list[pl.LazyFrame] = []
    for feature in features:
        name, column = feature.name, pl.col(feature.name)
        if is_numeric(feature):
            value = column.cast(pl.Float64)
            moments = keyed.group_by(PARTITION).agg(
                pl.len().cast(pl.Float64).alias("rows"),
                value.null_count().cast(pl.Float64).alias("nulls"),
                value.sum().alias("sum"),
                (value * value).sum().alias("sumsq"),
                value.min().alias("min"),
                value.max().alias("max"),
            )
            parts.append(
                moments.unpivot(index=PARTITION, variable_name="kind").with_columns(
                    feature=pl.lit(name), key=pl.lit("")
                )
            )
            bins = pl.lit(pl.Series(list(edges.get(name, [])), dtype=pl.Float64)).search_sorted(
                value, side="right"
            )
            parts.append(
                keyed.filter(column.is_not_null())
                .group_by(PARTITION, bins.cast(pl.String).alias("key"))
                .agg(pl.len().cast(pl.Float64).alias("value"))
                .with_columns(feature=pl.lit(name), kind=pl.lit("bin"))
            )
        else:
            counts = keyed.group_by(PARTITION).agg(
                pl.len().cast(pl.Float64).alias("rows"),
                column.null_count().cast(pl.Float64).alias("nulls"),
            )
            parts.append(
                counts.unpivot(index=PARTITION, variable_name="kind").with_columns(
                    feature=pl.lit(name), key=pl.lit("")
                )
            )
            parts.append(
                keyed.filter(column.is_not_null())
                .group_by(PARTITION, column.cast(pl.String).alias("key"))
                .agg(pl.len().cast(pl.Float64).alias("value"))
                .with_columns(feature=pl.lit(name), kind=pl.lit("category"))
            )
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    collected = pl.collect_all([p.select(list(SCHEMA)).cast(SCHEMA) for p in parts])  # type: ignore[arg-type]
    return pl.concat(collected)


def merge(summary: pl.DataFrame, partition: str = "all") -> pl.DataFrame:
    """Merges every partition of `summary` into one named `partition`."""
    return (
        summary.group_by("feature", "kind", "key", maintain_order=True)
        .agg(
            pl.when(pl.col("kind").first() == "min")
            .then(pl.col("value").min())
            .when(pl.col("kind").first() == "max")
            .then(pl.col("value").max())
            .otherwise(pl.col("value").sum())
            .alias("value")
        )
        .with_columns(pl.lit(partition).alias(PARTITION))
        .select(list(SCHEMA))
    )


def feature_stats(
    summary: pl.DataFrame, features: Sequence[Feature], edges: Mapping[str, Sequence[float]]
) -> list[FeatureStats]:
    """Readable statistics from a summary (merged first when it has several partitions)."""
    merged = merge(summary) if summary[PARTITION].n_unique() > 1 else summary
    parts: dict[str, dict[tuple[str, str], float]] = {}
    for feature, kind, key, value in merged.select("feature", "kind", "key", "value").iter_rows():
        parts.setdefault(feature, {})[(kind, key)] = value
    found = []
    for feature in features:
        got = parts.get(feature.name, {})
        rows = int(got.get(("rows", ""), 0))
        nulls = int(got.get(("nulls", ""), 0))
        present = rows - nulls
        mean = stddev = None
        inner = list(edges.get(feature.name, []))
        if is_numeric(feature) and present:
            mean = got[("sum", "")] / present
            variance = max(got[("sumsq", "")] / present - mean * mean, 0.0)
            stddev = math.sqrt(variance * present / (present - 1)) if present > 1 else 0.0
        found.append(
            FeatureStats(
                feature=feature.name,
                rows=rows,
                null_fraction=nulls / rows if rows else 0.0,
                mean=mean,
                stddev=stddev,
                minimum=got.get(("min", "")) if present else None,
                maximum=got.get(("max", "")) if present else None,
                bin_edges=(-math.inf, *inner, math.inf) if is_numeric(feature) else (),
                bin_counts=(
                    tuple(int(got.get(("bin", str(i)), 0)) for i in range(len(inner) + 1))
                    if is_numeric(feature)
                    else ()
                ),
                category_counts={
                    key: int(value) for (kind, key), value in got.items() if kind == "category"
                },
            )
        )
    return found
