"""Helpers for feature tests: a simulated pharmacy written as a day-partitioned lake."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from wavepod.simulator.config import SimulationConfig
from wavepod.simulator.generate import PharmacyData, simulate

# The simulator's answers, not columns a customer would send.
SIMULATOR_ONLY = ("next_fill_date", "censored")


def small_pharmacy(patients: int = 250, seed: int = 3) -> PharmacyData:
    """About 500 days: longer than the refill set's longest (365-day) window."""
    return simulate(
        SimulationConfig(
            patients=patients, seed=seed, start=date(2023, 1, 1), end=date(2024, 5, 15)
        )
    )


def write_fills(lake: Path, fills: pl.DataFrame, name: str = "part") -> None:
    """Fills as the ingest lake lays them out: `fills/date=YYYY-MM-DD/<name>.parquet`."""
    frame = fills.drop([c for c in SIMULATOR_ONLY if c in fills.columns])
    for (day,), part in frame.partition_by("fill_date", as_dict=True).items():
        folder = lake / "fills" / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        part.write_parquet(folder / f"{name}.parquet")


def write_lake(lake: Path, data: PharmacyData) -> None:
    write_fills(lake, data.fills)
    for name, frame in (("prescriptions", data.prescriptions), ("patients", data.patients)):
        (lake / name).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(lake / name / "part.parquet")
