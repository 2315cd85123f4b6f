"""Materializing the refill feature set: wavepod versus hand-written polars and pandas.

    ./pants run tests/benchmarks:feature_materialize -- --quick --json dist/fm.json

Same simulated lake (fills partitioned by day, prescriptions, patients), same features:
- wavepod: `materialize` of refill v1 (features, one Parquet file per event day written
  atomically, mergeable per-day statistics, the manifest that makes it incremental);
- an idiomatic hand-written polars pipeline computing the same features into one Parquet
  file (goal: wavepod takes <= 1.2x its time, i.e. ratio >= 0.83);
- pandas with `groupby().rolling()` (goal: wavepod >= 5x faster).
Every run first checks that the three agree, value by value, on the rows they produce.
The full size is about 10M fills (1M patients).
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

from benchmarks.harness import Report, parse_args, run_sizes

ARGS = parse_args(__doc__ or "")
os.environ["POLARS_MAX_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402

from feature.materialize import OfflineStore, materialize  # noqa: E402
from feature.sets.refill import REFILL_V1  # noqa: E402
from feature.testing import write_lake  # noqa: E402
from wavepod.lake import DirectoryLake  # noqa: E402
from wavepod.simulator.config import SimulationConfig  # noqa: E402
from wavepod.simulator.generate import simulate  # noqa: E402

SIZES = {"quick": [20_000], "full": [1_000_000]}  # patients; about 10 fills each
NUMERIC = [
    "last_gap", "gap_mean_3", "gap_std_3", "gap_mean_6", "gap_std_6", "late_mean_6",
    "days_supply", "quantity", "pdc_180d", "fills_365d", "days_since_first", "fill_number",
    "refills_left", "active_rx_count", "copay",
]  # fmt: skip
CATEGORICAL = ["channel", "drug_class", "payer", "sex", "age_band"]


def polars_pipeline(lake: Path, out: Path) -> None:
    rx = pl.scan_parquet(lake / "prescriptions" / "*.parquet")
    patients = pl.scan_parquet(lake / "patients" / "*.parquet")
    fills = pl.scan_parquet(lake / "fills" / "**" / "*.parquet", hive_partitioning=False)
    by_rx = "rx_id"
    day = pl.col("fill_date")
    age = day.dt.year() - pl.col("birth_year")
    one = pl.col("days_supply").is_not_null().cast(pl.Int64)
    supplied_180d = pl.col("days_supply").rolling_sum_by("fill_date", "180d").over(by_rx)
    (
        fills.join(rx.select("rx_id", "drug_class", "refills_allowed"), on="rx_id", how="left")
        .join(
            patients.select("patient_id", "birth_year", "sex", "payer"), on="patient_id", how="left"
        )
        .sort("rx_id", "fill_date", "fill_id")
        .with_columns(
            gap=pl.col("fill_date").diff().dt.total_days().cast(pl.Float64).over(by_rx),
            previous_supply=pl.col("days_supply").shift(1).over(by_rx),
            active_until=pl.min_horizontal(day.shift(-1).over(by_rx), day + pl.duration(days=90)),
        )
        .with_columns(lateness=pl.col("gap") - pl.col("previous_supply"))
        .with_columns(
            last_gap=pl.col("gap"),
            gap_mean_3=pl.col("gap").rolling_mean(3, min_samples=1).over(by_rx),
            gap_std_3=pl.col("gap").rolling_std(3, min_samples=2).over(by_rx),
            gap_mean_6=pl.col("gap").rolling_mean(6, min_samples=1).over(by_rx),
            gap_std_6=pl.col("gap").rolling_std(6, min_samples=2).over(by_rx),
            late_mean_6=pl.col("lateness").rolling_mean(6, min_samples=1).over(by_rx),
            pdc_180d=(supplied_180d / 180).clip(upper_bound=1.0),
            fills_365d=one.rolling_sum_by("fill_date", "365d").over(by_rx),
            days_since_first=(day - day.min().over(by_rx)).dt.total_days(),
            refills_left=pl.col("refills_allowed") - pl.col("fill_number"),
            active_rx_count=day.rank("max").over("patient_id").cast(pl.Int64)
            - pl.col("active_until").sort().search_sorted(day, side="right").over("patient_id"),
            age_band=pl.when(age < 30)
            .then(pl.lit("<30"))
            .when(age < 45)
            .then(pl.lit("30-44"))
            .when(age < 65)
            .then(pl.lit("45-64"))
            .when(age < 75)
            .then(pl.lit("65-74"))
            .otherwise(pl.lit("75+")),
        )
        .select("rx_id", "fill_date", "fill_id", *NUMERIC, *CATEGORICAL)
        .sink_parquet(out)
    )


def pandas_pipeline(lake: Path, out: Path) -> None:
    fills = pd.read_parquet(sorted(str(p) for p in (lake / "fills").rglob("*.parquet")))
    rx = pd.read_parquet(lake / "prescriptions")[["rx_id", "drug_class", "refills_allowed"]]
    patients = pd.read_parquet(lake / "patients")[["patient_id", "birth_year", "sex", "payer"]]
    df = fills.merge(rx, on="rx_id", how="left").merge(patients, on="patient_id", how="left")
    df["fill_date"] = pd.to_datetime(df["fill_date"])
    df = df.sort_values(["rx_id", "fill_date", "fill_id"]).reset_index(drop=True)
    by_rx = df.groupby("rx_id", sort=False)
    df["gap"] = by_rx["fill_date"].diff().dt.days.astype("float64")
    df["lateness"] = df["gap"] - by_rx["days_supply"].shift(1)
    gaps = df.groupby("rx_id", sort=False)["gap"]

    def rolling(
        series: pd.core.groupby.SeriesGroupBy, window: int, how: str, least: int
    ) -> pd.Series:
        rolled = getattr(series.rolling(window, min_periods=least), how)()
        return rolled.reset_index(level=0, drop=True)

    df["last_gap"] = df["gap"]
    df["gap_mean_3"] = rolling(gaps, 3, "mean", 1)
    df["gap_std_3"] = rolling(gaps, 3, "std", 2)
    df["gap_mean_6"] = rolling(gaps, 6, "mean", 1)
    df["gap_std_6"] = rolling(gaps, 6, "std", 2)
    df["late_mean_6"] = rolling(df.groupby("rx_id", sort=False)["lateness"], 6, "mean", 1)
    timed = df.set_index("fill_date").groupby("rx_id", sort=False)["days_supply"]
    df["pdc_180d"] = (timed.rolling("180D").sum().to_numpy() / 180).clip(max=1.0)
    df["fills_365d"] = timed.rolling("365D").count().to_numpy().astype("int64")
    df["days_since_first"] = (df["fill_date"] - by_rx["fill_date"].transform("min")).dt.days
    df["refills_left"] = df["refills_allowed"] - df["fill_number"]
    following = by_rx["fill_date"].shift(-1)
    df["active_until"] = following.where(
        following < df["fill_date"] + pd.Timedelta(days=90), df["fill_date"] + pd.Timedelta(days=90)
    )
    started = df.groupby("patient_id")["fill_date"].rank(method="max").astype("int64")
    ended = df.groupby("patient_id", group_keys=False)[["fill_date", "active_until"]].apply(
        lambda g: pd.Series(
            np.searchsorted(
                np.sort(g["active_until"].to_numpy()), g["fill_date"].to_numpy(), "right"
            ),
            index=g.index,
        )
    )
    df["active_rx_count"] = started - ended
    df["age_band"] = pd.cut(
        df["fill_date"].dt.year - df["birth_year"],
        [-np.inf, 30, 45, 65, 75, np.inf],
        right=False,
        labels=["<30", "30-44", "45-64", "65-74", "75+"],
    ).astype(str)
    df["fill_date"] = df["fill_date"].dt.date
    df[["rx_id", "fill_date", "fill_id", *NUMERIC, *CATEGORICAL]].to_parquet(out)


def check_same(wavepod: pl.DataFrame, peer: pl.DataFrame, peer_name: str) -> None:
    key = ["rx_id", "fill_date", "fill_id"]
    ours = wavepod.sort(key).select(*key, *NUMERIC, *CATEGORICAL)
    theirs = peer.sort(key).select(*key, *NUMERIC, *CATEGORICAL)
    assert ours.height == theirs.height, f"{peer_name}: {theirs.height} rows, wavepod {ours.height}"
    for column in [*key, *CATEGORICAL]:
        assert (
            ours[column].cast(pl.String).equals(theirs[column].cast(pl.String))
        ), f"{peer_name} disagrees on {column}"
    for column in NUMERIC:
        a = ours[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        b = theirs[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        assert np.allclose(
            a, b, rtol=1e-9, atol=1e-9, equal_nan=True
        ), f"{peer_name} disagrees on {column}"


def run_size(patients: int, work: Path, report: Report) -> None:
    data = simulate(SimulationConfig(patients=patients, seed=1, start=date(2023, 1, 1)))
    lake = work / f"lake-{patients}"
    write_lake(lake, data)
    rows = data.fills.height
    label = f"{rows:,} fills"

    offline = OfflineStore(work / f"store-{patients}", REFILL_V1)
    ours = report.time(
        f"wavepod materialize refill v1, {label}",
        rows,
        lambda: materialize(REFILL_V1, DirectoryLake(lake), offline),
    )
    hand = report.time(
        f"hand-written polars pipeline, {label}",
        rows,
        lambda: polars_pipeline(lake, work / f"polars-{patients}.parquet"),
    )
    report.compare(ours, hand, ">= 0.83")
    panda = report.time(
        f"pandas groupby().rolling(), {label}",
        rows,
        lambda: pandas_pipeline(lake, work / f"pandas-{patients}.parquet"),
    )
    report.compare(ours, panda, ">= 5")

    materialized = offline.scan().collect()
    check_same(materialized, pl.read_parquet(work / f"polars-{patients}.parquet"), "polars")
    check_same(materialized, pl.read_parquet(work / f"pandas-{patients}.parquet"), "pandas")


def main() -> int:
    return run_sizes("feature_materialize", ARGS, SIZES, run_size)


if __name__ == "__main__":
    sys.exit(main())
