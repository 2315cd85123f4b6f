"""`wavepod-sim`: generate and publish a simulated pharmacy.

./pants run libs/wavepod/simulator:cli -- generate --patients 100000 --out /tmp/pharmacy
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wavepod.simulator.config import (
    MailShipsEarlier,
    PayerPolicyChange,
    PharmacyOutage,
    SimulationConfig,
)
from wavepod.simulator.generate import simulate
from wavepod.simulator.publish import publish_all

app = typer.Typer(help="Simulated pharmacy data for wavepod.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory for patients.db, CSV drops and fills.")],
    patients: Annotated[int, typer.Option(min=1, help="Number of patients.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 7,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2023-01-01",
    end: Annotated[str, typer.Option(help="Day after the last (YYYY-MM-DD).")] = "2025-01-01",
    sql: Annotated[
        str | None, typer.Option(help="postgresql:// URL for patients instead of SQLite.")
    ] = None,
    policy_change: Annotated[
        str | None, typer.Option(help="Date from which medicare forces 90-day fills.")
    ] = None,
    outage: Annotated[str | None, typer.Option(help="Retail outage START:END (dates).")] = None,
    mail_earlier: Annotated[
        str | None, typer.Option(help="Date from which mail order ships 12 days earlier.")
    ] = None,
) -> None:
    config = SimulationConfig(
        patients=patients,
        seed=seed,
        start=date.fromisoformat(start),
        end=date.fromisoformat(end),
        payer_policy_change=(
            PayerPolicyChange(date.fromisoformat(policy_change)) if policy_change else None
        ),
        pharmacy_outage=(
            PharmacyOutage(*map(date.fromisoformat, outage.split(":"))) if outage else None
        ),
        mail_ships_earlier=(
            MailShipsEarlier(date.fromisoformat(mail_earlier)) if mail_earlier else None
        ),
    )
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("simulating", total=None)
        started = time.perf_counter()
        data = simulate(config)
        simulated = time.perf_counter() - started
        progress.update(task, description="publishing")
        paths = publish_all(data, out, sql)
    table = Table(title=f"simulated pharmacy in {simulated:.1f}s")
    for column in ("dataset", "rows", "where"):
        table.add_column(column)
    table.add_row("patients", f"{data.patients.height:,}", sql or str(paths["patients"]))
    table.add_row("prescriptions", f"{data.prescriptions.height:,}", str(paths["prescriptions"]))
    table.add_row("fills", f"{data.fills.height:,}", str(paths["fills"]))
    Console().print(table)


@app.command()
def version() -> None:
    """Prints the simulator version."""
    print("wavepod-sim 0.1.0")


if __name__ == "__main__":
    app()
