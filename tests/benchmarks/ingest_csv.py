"""CSV -> validated, partitioned Parquet: wavepod ingest versus DuckDB and pandas.

    ./pants run tests/benchmarks:ingest_csv -- --quick --json dist/benchmarks/ingest_csv.json

Peers, on the same simulated fills CSV and the same thread budget:
- DuckDB `read_csv` straight to Parquet, no validation (goal: wavepod >= 0.8x its rate);
- the same, written in the lake's layout (one file per day, `PARTITION_BY`): no goal,
  it shows what the layout costs DuckDB too;
- pandas `read_csv` + per-row validation + `to_parquet` (goal: wavepod >= 10x).
wavepod does more than either: types, quality rules (ranges, allowed values, uniqueness,
references to prescriptions), quarantine, PII pseudonymization, partitioning by date,
exactly-once bookkeeping.
Then two drops of new fills into the lake the bulk load filled, each beside DuckDB
writing the same drop (no goal: they show that a drop's cost does not grow with the lake).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from benchmarks.harness import Report, parse_args, run_sizes

ARGS = parse_args(__doc__ or "")
# Thread pools read these at import time.
os.environ["POLARS_MAX_THREADS"] = str(ARGS.threads)

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402

from ingest.convert import schema_from_proto  # noqa: E402
from ingest.engine import IngestEngine  # noqa: E402
from ingest.sources import SourceKind, SourceSpec  # noqa: E402
from wavepod.simulator.config import SimulationConfig  # noqa: E402
from wavepod.simulator.generate import simulate  # noqa: E402
from wavepod.simulator.publish import customer_fills, publish_csv_drops  # noqa: E402
from wavepod.simulator.schemas import FILLS, PRESCRIPTIONS  # noqa: E402

SIZES = {"quick": [20_000], "full": [100_000, 1_000_000]}  # patients; about 10 fills each
DROP_ROWS = 5_000  # a daily drop: new fill ids, dates and prescriptions the lake knows


def pandas_baseline(csv: Path, out: Path, known_rx: set[str]) -> None:
    frame = pd.read_csv(csv)
    allowed = {"retail", "mail"}

    def valid(row: pd.Series) -> bool:
        return (
            isinstance(row["fill_id"], str)
            and 1 <= row["days_supply"] <= 365
            and row["channel"] in allowed
            and row["rx_id"] in known_rx
            and (pd.isna(row["copay"]) or row["copay"] >= 0)
        )

    mask = frame.apply(valid, axis=1)
    frame[mask].to_parquet(out)


def duckdb_copy(
    con: duckdb.DuckDBPyConnection, csv: Path, target: Path, options: str = ""
) -> Callable[[], object]:
    """The peer: DuckDB reading the CSV straight into Parquet, no validation."""
    sql = f"COPY (SELECT * FROM read_csv('{csv}')) TO '{target}' (FORMAT parquet{options})"
    return lambda: con.execute(sql)


def daily_drops(
    engine: IngestEngine,
    con: duckdb.DuckDBPyConnection,
    fills: pl.DataFrame,
    work: Path,
    report: Report,
) -> None:
    """Drops of new fills into the lake the bulk load filled: a drop's work should not
    grow with the lake (its keys and references are read once per process, then only
    what each batch adds). The first drop pays that read; the next does not."""
    work.mkdir()
    for n, name in enumerate(("first drop after the bulk load", "next drop")):
        drop = fills.tail(DROP_ROWS).with_columns(pl.col("fill_id") + f"-drop{n}")
        csv = work / f"drop-{n}.csv"
        drop.write_csv(csv)
        source = engine.register_source(SourceSpec("fills", SourceKind.FILES, str(csv)))

        def land(source: str = source) -> None:
            batch, _ = engine.run_ingest(source)
            assert batch.rows_landed == DROP_ROWS, f"a drop landed {batch.rows_landed} rows"

        label = f"{DROP_ROWS:,} fills"
        ours = report.time(
            f"wavepod ingest, {name}, {label} into {fills.height:,}", DROP_ROWS, land
        )
        duck = report.time(
            f"DuckDB read_csv -> Parquet, drop {n + 1}, {label}",
            DROP_ROWS,
            duckdb_copy(con, csv, work / f"drop-{n}.parquet"),
        )
        report.compare(ours, duck, "")


def run_size(patients: int, work: Path, report: Report) -> None:
    data = simulate(SimulationConfig(patients=patients, seed=1, start=date(2023, 1, 1)))
    fills = customer_fills(data.fills)
    csv = work / f"fills-{patients}.csv"
    fills.write_csv(csv)
    rows = fills.height

    engine = IngestEngine(work / f"lake-{patients}", pii_key=b"bench-key")
    no_patient_refs = type(PRESCRIPTIONS)()
    no_patient_refs.CopyFrom(PRESCRIPTIONS)
    del no_patient_refs.rules[2]
    engine.register_schema(schema_from_proto(no_patient_refs))
    engine.register_schema(schema_from_proto(FILLS))
    publish_csv_drops(data.prescriptions, work / f"rx-{patients}")
    rx = engine.register_source(
        SourceSpec("prescriptions", SourceKind.FILES, str(work / f"rx-{patients}" / "*.csv"))
    )
    engine.run_ingest(rx)  # the reference target; not timed
    source = engine.register_source(SourceSpec("fills", SourceKind.FILES, str(csv)))

    label = f"{rows:,} fills"
    ours = report.time(f"wavepod ingest, {label}", rows, lambda: engine.run_ingest(source))
    landed = engine.read("fills", columns=["fill_id"]).height
    assert landed == rows, f"wavepod landed {landed} of {rows}"

    con = duckdb.connect(config={"threads": ARGS.threads})
    duck = report.time(
        f"DuckDB read_csv -> Parquet, {label}",
        rows,
        duckdb_copy(con, csv, work / f"duckdb-{patients}.parquet"),
    )
    report.compare(ours, duck, ">= 0.8")
    by_day = report.time(
        f"DuckDB read_csv -> Parquet by day, {label}",
        rows,
        duckdb_copy(
            con, csv, work / f"duckdb-{patients}-by-day", ", PARTITION_BY (fill_date), OVERWRITE"
        ),
    )
    report.compare(ours, by_day, "")
    daily_drops(engine, con, fills, work / f"drops-{patients}", report)

    known_rx = set(data.prescriptions["rx_id"])
    panda = report.time(
        f"pandas read_csv + row validation, {label}",
        rows,
        lambda: pandas_baseline(csv, work / f"pandas-{patients}.parquet", known_rx),
    )
    report.compare(ours, panda, ">= 10")
    engine.close()


def main() -> int:
    return run_sizes("ingest_csv", ARGS, SIZES, run_size)


if __name__ == "__main__":
    sys.exit(main())
