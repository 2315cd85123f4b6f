"""What every CLI command shares: one console, gRPC errors as one red line and exit code
1, and progress-streaming RPCs (RunIngest, Materialize) drawn as progress bars."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()


@contextmanager
def rpc_errors() -> Iterator[None]:
    try:
        yield
    except grpc.RpcError as error:
        console.print(f"[red]{error.code().name}[/red]: {error.details()}")
        raise typer.Exit(code=1) from None


def follow(events: Iterable[Any], result_field: str, description: str) -> Any:
    """Draws each `progress` event of the stream; returns its `result_field` event."""
    result = None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        for event in events:
            if event.HasField("progress"):
                p = event.progress
                bar.update(
                    task,
                    description=f"{description}: {p.phase}",
                    completed=p.done,
                    total=p.total or None,
                )
            else:
                result = getattr(event, result_field)
    if result is None:
        console.print(f"[red]the stream ended without a {result_field}[/red]")
        raise typer.Exit(code=1)
    return result
