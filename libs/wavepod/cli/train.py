"""`wavepod train`: start training runs and watch them with a progress bar.

    wavepod train start --model-name refill --feature-set refill:1 \\
        --label days_to_next_fill --baseline-feature days_supply --trials 30
    wavepod train list --model-name refill
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from wavepod.cli import endpoints
from wavepod.cli.endpoints import Metadata
from wavepod.cli.ui import console, rpc_errors
from wavepod.feature.v1 import feature_pb2
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc

app = typer.Typer(help="Training runs on the trainer.", no_args_is_help=True)
STATE = {v: k.removeprefix("RUN_STATE_").lower() for k, v in trainer_pb2.RunState.items()}


def _stub() -> tuple[trainer_pb2_grpc.TrainerServiceStub, Metadata]:
    found = endpoints.current()
    return trainer_pb2_grpc.TrainerServiceStub(found.channel("trainer")), found.metadata("trainer")


def watch_run(stub: trainer_pb2_grpc.TrainerServiceStub, run_id: str, metadata: Metadata) -> int:
    """Renders WatchRun as a progress bar; the exit code says how the run ended."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
    )
    last = trainer_pb2.RunEvent()
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("starting", total=None, best="")
        for event in stub.WatchRun(trainer_pb2.WatchRunRequest(run_id=run_id), metadata=metadata):
            last = event
            p = event.progress
            if p.total:  # a phase that counts (the search): move the bar
                progress.update(task, completed=p.done, total=p.total)
            if event.trial:
                progress.update(task, best=f"best valid MAE {event.best_metric:.3f}")
            progress.update(task, description=p.phase)
    if last.state == trainer_pb2.RUN_STATE_SUCCEEDED:
        run = stub.GetRun(trainer_pb2.GetRunRequest(run_id=run_id), metadata=metadata)
        _print_runs([run])
        return 0
    console.print(f"[red]run {run_id} {STATE[last.state]}[/red]: {last.progress.message}")
    return 1


def _print_runs(runs: list[trainer_pb2.Run]) -> None:
    table = Table("run", "model", "state", "holdout MAE", "baseline MAE", "version", "error")
    for run in runs:
        m = run.metrics
        table.add_row(
            run.run_id,
            run.spec.model_name,
            STATE[run.state],
            f"{m['holdout_mae']:.3f}" if "holdout_mae" in m else "",
            f"{m['baseline_holdout_mae']:.3f}" if "baseline_holdout_mae" in m else "",
            run.registered_model.version,
            run.error[:80],
        )
    console.print(table)


@app.command()
def start(
    model_name: Annotated[str, typer.Option(help="Registered model name.")],
    feature_set: Annotated[str, typer.Option(help="NAME:VERSION, e.g. refill:1.")],
    label: Annotated[str, typer.Option(help="Label column of the training set.")],
    baseline_feature: Annotated[str, typer.Option(help="Feature that is the naive guess.")] = "",
    trials: Annotated[int, typer.Option(help="Optuna trials.")] = 20,
    seconds: Annotated[int, typer.Option(help="Search time budget.")] = 600,
    seed: Annotated[int, typer.Option(help="Same data + seed: same metrics.")] = 7,
    watch: Annotated[bool, typer.Option(help="Follow the run with a progress bar.")] = True,
) -> None:
    """Start a training run and follow it with a progress bar."""
    name, _, version = feature_set.partition(":")
    spec = trainer_pb2.RunSpec(
        model_name=model_name,
        feature_set=feature_pb2.FeatureSetRef(name=name, version=version),
        label_column=label,
        budget=trainer_pb2.SearchBudget(max_trials=trials, max_seconds=seconds),
        seed=seed,
        baseline_feature=baseline_feature,
    )
    stub, metadata = _stub()
    with rpc_errors():
        run = stub.StartRun(trainer_pb2.StartRunRequest(spec=spec), metadata=metadata, timeout=60)
        console.print(f"started run {run.run_id}")
        if watch:
            raise typer.Exit(code=watch_run(stub, run.run_id, metadata))


@app.command("watch")
def watch_command(run_id: str) -> None:
    """Follow a run with a progress bar."""
    stub, metadata = _stub()
    with rpc_errors():
        raise typer.Exit(code=watch_run(stub, run_id, metadata))


@app.command("list")
def list_runs(
    model_name: Annotated[str, typer.Option(help="Only this model's runs.")] = "",
) -> None:
    """Runs, newest first."""
    stub, metadata = _stub()
    with rpc_errors():
        found = stub.ListRuns(
            trainer_pb2.ListRunsRequest(model_name=model_name), metadata=metadata, timeout=30
        )
    _print_runs(list(found.runs))
