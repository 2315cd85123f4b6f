"""Hands the simulated data over the way a customer would.

Patients sit in a SQL database (a SQLite file, or PostgreSQL), prescriptions arrive as
monthly CSV drops, fills as CSV (and, with the REST server, as a paginated API). The
label (`next_fill_date`) is not in what the customer sends: it comes back later as
feedback, written separately.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from wavepod.duck import attach, connect, is_postgres
from wavepod.simulator.generate import PharmacyData

LABEL_COLUMNS = ("next_fill_date", "censored")


def publish_sql(
    patients: pl.DataFrame, target: str, table: str = "patients", password: str = ""
) -> None:
    """Writes patients into a SQLite file path or a `postgresql://` URL (replacing them)."""
    con = connect(extensions=["postgres_scanner" if is_postgres(target) else "sqlite_scanner"])
    try:
        con.register("patients_df", patients.to_arrow())
        attach(con, target, "src", password=password)
        con.execute(f"DROP TABLE IF EXISTS src.{table}")
        con.execute(f"CREATE TABLE src.{table} AS SELECT * FROM patients_df")
    finally:
        con.close()


def publish_csv_drops(prescriptions: pl.DataFrame, directory: Path) -> list[Path]:
    """One CSV per month of prescription start: `prescriptions_YYYY-MM.csv`."""
    directory.mkdir(parents=True, exist_ok=True)
    keyed = prescriptions.with_columns(pl.col("start_date").dt.strftime("%Y-%m").alias("_month"))
    paths = []
    for (month,), part in keyed.partition_by("_month", as_dict=True, maintain_order=True).items():
        path = directory / f"prescriptions_{month}.csv"
        part.drop("_month").write_csv(path)
        paths.append(path)
    return sorted(paths)


def customer_fills(fills: pl.DataFrame) -> pl.DataFrame:
    return fills.drop(LABEL_COLUMNS)


def feedback(fills: pl.DataFrame) -> pl.DataFrame:
    """The observed outcome per fill: the date of the next fill (null: none yet)."""
    return fills.select("fill_id", "next_fill_date", "censored")


def publish_all(data: PharmacyData, out: Path, sql_target: str | None = None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    sqlite_path = out / "patients.db"
    publish_sql(data.patients, sql_target or str(sqlite_path))
    publish_csv_drops(data.prescriptions, out / "prescriptions")
    customer_fills(data.fills).write_csv(out / "fills.csv")
    feedback(data.fills).write_parquet(out / "feedback.parquet")
    return {
        "patients": sqlite_path,
        "prescriptions": out / "prescriptions",
        "fills": out / "fills.csv",
        "feedback": out / "feedback.parquet",
    }
