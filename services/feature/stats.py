"""Per-feature summaries that merge across partitions and compare cheaply later.

A summary is a long table (partition, feature, kind, key, value) of additive parts:
row and null counts, sum and sum of squares (mean/std), min/max, counts per histogram
bin over fixed edges, counts per category. Merging partitions is a group-by sum (min/max
for the extremes), so a materialization's baseline is the merge of its partitions and a
drift check later needs only the current window's counts on the baseline's edges.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
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
_QUANTILES = [i / 20 for i in range(1, 20)]
_EDGE_SAMPLE = 50_000  # quantile edges from a seeded sample: exactness buys nothing here


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
    """Inner bin edges per numeric feature: its distinct 5%..95% quantiles (of a sample)."""
    sample = frame.sample(n=_EDGE_SAMPLE, seed=0) if frame.height > _EDGE_SAMPLE else frame
    edges: dict[str, list[float]] = {}
    for feature in features:
        if not is_numeric(feature):
            continue
        values = sample[feature.name].cast(pl.Float64).drop_nulls().drop_nans().sort()
        if values.len() == 0:
            edges[feature.name] = []
            continue
        picks = [values[min(values.len() - 1, int(q * values.len()))] for q in _QUANTILES]
        edges[feature.name] = sorted({v for v in picks if math.isfinite(v)})
    return edges


_SEP = "\x1f"


def summarize(
    frame: pl.DataFrame,
    features: Sequence[Feature],
    edges: Mapping[str, Sequence[float]],
    partition: pl.Expr | None = None,
) -> pl.DataFrame:
    """The summary of `frame`, one set of parts per partition (all rows when none)."""
    if not features:
        return pl.DataFrame(schema=SCHEMA)
    keys = frame.with_columns(
        (partition if partition is not None else pl.lit("all")).alias(PARTITION)
    )[PARTITION]
    if not keys.is_sorted():  # materialized months already come contiguous
        order = keys.arg_sort()
        frame, keys = frame[order], keys.gather(order)
    keys = keys.set_sorted()  # each partition is a slice: group-bys and histograms use that
    runs = keys.rle().struct.unnest()
    names = runs["value"]
    bounds = np.cumsum(np.concatenate([[0], runs["len"].to_numpy()]))
    keyed = frame.lazy().with_columns(keys.alias(PARTITION))
    # Counts and moments of every feature in one pass, category counts with a group-by
    # each, histograms with numpy.
    moments: list[pl.Expr] = []
    histograms: list[tuple[str, Sequence[float]]] = []
    categories: list[pl.LazyFrame] = []
    for feature in features:
        name = feature.name
        moments += [
            pl.len().cast(pl.Float64).alias(f"{name}{_SEP}rows"),
            pl.col(name).null_count().cast(pl.Float64).alias(f"{name}{_SEP}nulls"),
        ]
        if is_numeric(feature):
            value = pl.col(name).cast(pl.Float64)
            moments += [
                value.sum().alias(f"{name}{_SEP}sum"),
                (value * value).sum().alias(f"{name}{_SEP}sumsq"),
                value.min().alias(f"{name}{_SEP}min"),
                value.max().alias(f"{name}{_SEP}max"),
            ]
            histograms.append((name, edges.get(name, [])))
        else:
            categories.append(
                keyed.filter(pl.col(name).is_not_null())
                .group_by(PARTITION, pl.col(name).cast(pl.String).alias("key"))
                .agg(pl.len().cast(pl.Float64).alias("value"))
                .with_columns(feature=pl.lit(name), kind=pl.lit("category"))
            )
    totals = (
        keyed.group_by(PARTITION)
        .agg(moments)
        .unpivot(index=PARTITION, variable_name="part")
        .with_columns(
            pl.col("part").str.split_exact(_SEP, 1).struct.rename_fields(["feature", "kind"])
        )
        .unnest("part")
        .with_columns(key=pl.lit(""))
    )
    lazy = [
        p.with_columns(pl.col(PARTITION).cast(pl.String)).select(list(SCHEMA)).cast(SCHEMA)  # type: ignore[arg-type]
        for p in [totals, *categories]
    ]
    # numpy releases the GIL while it bins: histograms overlap each other and polars.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        binned = pool.map(
            lambda h: _bin_rows(h[0], _histogram(frame[h[0]], h[1], bounds), names),
            histograms,
        )
        collected = pl.collect_all(lazy)
        return pl.concat([*collected, *binned])


def _histogram(column: pl.Series, inner: Sequence[float], bounds: np.ndarray) -> np.ndarray:
    """Counts per (partition, bin) of the column's non-null values, shape (partitions, bins);
    partition i is the slice bounds[i]:bounds[i + 1]."""
    bins = len(inner) + 1
    values = column.cast(pl.Float64).fill_null(np.nan).to_numpy()
    # A value's bin is the number of inner edges at or below it. Edges are few (at most
    # 19 by `choose_edges`), and one vectorized comparison per edge is several times
    # faster than a binary search per value; NaN compares false everywhere and goes to an
    # extra slot (nulls).
    index = np.zeros(len(values), dtype=np.min_scalar_type(bins))
    for edge in inner:
        np.add(index, values >= edge, out=index, casting="unsafe")
    index[np.isnan(values)] = bins
    counts = [np.bincount(index[start:end], minlength=bins + 1) for start, end in pairwise(bounds)]
    return np.stack(counts)[:, :bins]


def _bin_rows(name: str, counts: np.ndarray, names: pl.Series) -> pl.DataFrame:
    partitions, cells = np.nonzero(counts)
    return pl.DataFrame(
        {
            PARTITION: names.gather(partitions).cast(pl.String),
            "feature": [name] * len(cells),
            "kind": ["bin"] * len(cells),
            "key": cells.astype(str),
            "value": counts[partitions, cells].astype(np.float64),
        },
        schema=SCHEMA,
    )


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
