"""`wavepod`: the commands a delivery team runs daily against a running stack.

    ./pants run libs/wavepod/cli:wavepod -- status
    ./pants run libs/wavepod/cli:wavepod -- predict 1234-rx --model refill
    ./pants run libs/wavepod/cli:wavepod -- --help

Where the services are, and the tokens it presents: see wavepod.cli.endpoints (after
`./pants run deploy/local:up` it finds the stack by itself).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.table import Table

from wavepod.cli import endpoints, train
from wavepod.cli.endpoints import SERVICES
from wavepod.cli.ui import console, follow, rpc_errors
from wavepod.common.v1 import refs_pb2, values_pb2
from wavepod.evaluator.v1 import evaluator_pb2 as E
from wavepod.evaluator.v1 import evaluator_pb2_grpc
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.lake import lineage_records
from wavepod.runtime.audit import AuditLog, AuditLogCorrupt, shorten
from wavepod.runtime.audit_interceptor import REFUSED
from wavepod.simulator import cli as simulator
from wavepod.values import rows_from_columns, to_value

S = TypeVar("S")
app = typer.Typer(
    name="wavepod", help="Run the wavepod flywheel from a terminal.", no_args_is_help=True
)
ingest = typer.Typer(help="Sources into the lake, and what landed.", no_args_is_help=True)
features = typer.Typer(help="Feature sets and their materialization.", no_args_is_help=True)
app.add_typer(simulator.app, name="simulate")
app.add_typer(ingest, name="ingest")
app.add_typer(features, name="features")
app.add_typer(train.app, name="train")


@app.callback()
def main(
    state: Annotated[
        Path,
        typer.Option(envvar="WAVEPOD_STATE", help="The local stack's state directory."),
    ] = endpoints.DEFAULT_STATE,
) -> None:
    endpoints.use(state)


def _stub(service: str, stub: Callable[[grpc.Channel], S]) -> tuple[S, endpoints.Metadata]:
    found = endpoints.current()
    return stub(found.channel(service)), found.metadata(service)


# --- ingest -------------------------------------------------------------------------------
@ingest.command("run")
def ingest_run(source_id: str) -> None:
    """Land a registered source (exactly once) and show what landed."""
    stub, metadata = _stub("ingest", ingest_pb2_grpc.IngestServiceStub)
    with rpc_errors():
        events = stub.RunIngest(
            ingest_pb2.RunIngestRequest(source_id=source_id), metadata=metadata, timeout=3600
        )
        report = follow(events, "report", f"ingesting {source_id}")
    table = Table("dataset", "batch", "read", "landed", "quarantined", "duplicate")
    table.add_row(
        report.output.name,
        report.batch_id,
        f"{report.rows_read:,}",
        f"{report.rows_landed:,}",
        f"{report.rows_quarantined:,}",
        str(report.duplicate),
    )
    console.print(table)
    for rule, count in sorted(report.violations_by_rule.items()):
        console.print(f"  [yellow]{rule}[/yellow]: {count:,} rows quarantined")


@ingest.command("datasets")
def ingest_datasets() -> None:
    """Datasets with a registered schema."""
    stub, metadata = _stub("ingest", ingest_pb2_grpc.IngestServiceStub)
    with rpc_errors():
        found = stub.ListDatasets(ingest_pb2.ListDatasetsRequest(), metadata=metadata, timeout=30)
    table = Table("dataset", "schema version")
    for dataset in found.datasets:
        table.add_row(dataset.name, dataset.version)
    console.print(table)


@ingest.command("lineage")
def ingest_lineage(dataset: str) -> None:
    """Every batch of a dataset: where it came from, counts, status."""
    stub, metadata = _stub("ingest", ingest_pb2_grpc.IngestServiceStub)
    with rpc_errors():
        records = list(lineage_records(stub, dataset, metadata=metadata, timeout=30))
    table = Table("batch", "when", "status", "source", "inputs", "landed", "quarantined")
    for record in records:
        attributes = record.attributes
        table.add_row(
            record.id,
            record.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            attributes.get("status", ""),
            record.inputs[0].name if record.inputs else "",
            str(len(record.inputs)),
            attributes.get("rows_landed", ""),
            attributes.get("rows_quarantined", ""),
        )
    console.print(table)


# --- features -----------------------------------------------------------------------------
def _feature_set(ref: str) -> feature_pb2.FeatureSetRef:
    name, _, version = ref.partition(":")
    return feature_pb2.FeatureSetRef(name=name, version=version)


@features.command("list")
def features_list() -> None:
    """Registered feature sets and their features."""
    stub, metadata = _stub("feature", feature_pb2_grpc.FeatureServiceStub)
    with rpc_errors():
        found = stub.ListFeatureSets(
            feature_pb2.ListFeatureSetsRequest(), metadata=metadata, timeout=30
        )
    table = Table("feature set", "entity", "sources", "features")
    for fs in found.feature_sets:
        table.add_row(
            f"{fs.ref.name}:{fs.ref.version}",
            fs.entity_key,
            ", ".join(fs.source_datasets),
            ", ".join(f.name for f in fs.features),
        )
    console.print(table)


@features.command("materialize")
def features_materialize(
    feature_set: Annotated[str, typer.Argument(help="NAME:VERSION, e.g. refill:1.")],
) -> None:
    """Compute what is pending offline and refresh the online store."""
    stub, metadata = _stub("feature", feature_pb2_grpc.FeatureServiceStub)
    with rpc_errors():
        events = stub.Materialize(
            feature_pb2.MaterializeRequest(feature_set=_feature_set(feature_set)),
            metadata=metadata,
            timeout=3600,
        )
        summary = follow(events, "summary", f"materializing {feature_set}")
    console.print(
        f"{summary.rows:,} rows for {summary.entities:,} entities; "
        f"{summary.partitions_written} partitions written, {summary.partitions_skipped} "
        f"up to date; {summary.online_written:,} online values refreshed"
    )


@features.command("get")
def features_get(
    feature_set: Annotated[str, typer.Argument(help="NAME:VERSION, e.g. refill:1.")],
    entity_ids: Annotated[list[str], typer.Argument(help="Entities to look up.")],
    feature: Annotated[
        list[str] | None, typer.Option(help="Only these features (repeatable).")
    ] = None,
) -> None:
    """Online feature values of entities, as the gateway reads them."""
    stub, metadata = _stub("feature", feature_pb2_grpc.FeatureServiceStub)
    request = feature_pb2.GetOnlineFeaturesRequest(
        feature_set=_feature_set(feature_set), entity_ids=entity_ids, features=feature or []
    )
    with rpc_errors():
        reply = stub.GetOnlineFeatures(request, metadata=metadata, timeout=30)
    rows = rows_from_columns(reply.columns, len(reply.entities))
    table = Table("feature", *(e.entity_id for e in reply.entities))
    table.add_row(
        "(as of)",
        *(
            (
                "missing"
                if e.missing
                else e.event_time.ToDatetime().strftime("%Y-%m-%d") + (" stale" if e.stale else "")
            )
            for e in reply.entities
        ),
    )
    for column in reply.columns:
        table.add_row(column.name, *(_text(row[column.name]) for row in rows))
    console.print(table)


def _text(value: object) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


# --- predictions --------------------------------------------------------------------------
def _model(model: str) -> refs_pb2.ModelRef:
    name, _, version = model.partition(":")
    return refs_pb2.ModelRef(name=name, version=version)


def _row(text: str) -> values_pb2.Row:
    """`name=value,name=value`: numbers where they parse, text otherwise."""
    row = values_pb2.Row()
    for pair in filter(None, text.split(",")):
        name, sep, raw = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r}: expected name=value")
        value: object = raw
        for parse in (int, float):
            try:
                value = parse(raw)
                break
            except ValueError:
                continue
        row.values[name.strip()].CopyFrom(to_value(value))
    return row


@app.command()
def predict(
    entity_ids: Annotated[
        list[str] | None, typer.Argument(help="Entities whose online features to use.")
    ] = None,
    row: Annotated[
        list[str] | None, typer.Option(help="Inline features: name=value,name=value.")
    ] = None,
    model: Annotated[str, typer.Option(help="NAME or NAME:VERSION; empty: champion.")] = "",
) -> None:
    """Predictions through the gateway, with the version and route that answered."""
    stub, metadata = _stub("gateway", gateway_pb2_grpc.GatewayServiceStub)
    request = gateway_pb2.PredictRequest(
        model=_model(model), entity_ids=entity_ids or [], rows=[_row(r) for r in row or []]
    )
    with rpc_errors():
        reply = stub.Predict(request, metadata=metadata, timeout=30)
    table = Table("entity", "prediction", "version", "route", "prediction id")
    for p in reply.predictions:
        table.add_row(p.entity_id, f"{p.value:.2f}", p.model_version, p.route, p.prediction_id)
    console.print(table)
    console.print(f"model {reply.model.name}, trace {reply.trace_id}")


@app.command()
def feedback(
    prediction_id: str,
    observed: Annotated[float, typer.Argument(help="The outcome, e.g. days to the refill.")],
) -> None:
    """Report what happened for a prediction; it lands in the lake through ingest."""
    stub, metadata = _stub("gateway", gateway_pb2_grpc.GatewayServiceStub)
    with rpc_errors():
        reply = stub.SubmitFeedback(
            gateway_pb2.SubmitFeedbackRequest(prediction_id=prediction_id, observed_value=observed),
            metadata=metadata,
            timeout=30,
        )
    console.print(f"feedback {reply.feedback_id} recorded")


# --- promotion ----------------------------------------------------------------------------
@app.command()
def promote(
    model: str,
    version: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "promoted by hand",
) -> None:
    """Evaluate a version against the champion; promote it if it passes its gates."""
    stub, metadata = _stub("evaluator", evaluator_pb2_grpc.EvaluatorServiceStub)
    ref = refs_pb2.ModelRef(name=model, version=version)
    with rpc_errors():
        with console.status(f"evaluating {model} version {version}"):
            evaluation = stub.Evaluate(
                E.EvaluateRequest(candidate=ref), metadata=metadata, timeout=900
            )
        gates = Table("gate", "passed", "observed", "threshold", "detail")
        for gate in evaluation.gates:
            mark = "[green]yes[/green]" if gate.passed else "[red]no[/red]"
            gates.add_row(
                gate.gate, mark, f"{gate.observed:.4g}", f"{gate.threshold:.4g}", gate.detail
            )
        console.print(gates)
        if not evaluation.passed:
            console.print(f"[red]{model} version {version} failed its gates: not promoted")
            raise typer.Exit(code=1)
        moved = stub.Promote(
            E.PromoteRequest(model=ref, evaluation_id=evaluation.evaluation_id, reason=reason),
            metadata=metadata,
            timeout=900,
        )
    console.print(
        f"champion: {model} version {moved.champion.version}"
        f" (was {moved.previous.version or 'none'})"
    )


@app.command()
def rollback(
    model: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "rolled back by hand",
) -> None:
    """Make the previous champion the champion again."""
    stub, metadata = _stub("evaluator", evaluator_pb2_grpc.EvaluatorServiceStub)
    with rpc_errors():
        moved = stub.Rollback(
            E.RollbackRequest(model_name=model, reason=reason), metadata=metadata, timeout=900
        )
    console.print(
        f"champion: {model} version {moved.champion.version} (was {moved.previous.version})"
    )


# --- audit --------------------------------------------------------------------------------
@app.command()
def audit(
    service: Annotated[
        str, typer.Argument(help=f"Whose log, in the local stack: one of {', '.join(SERVICES)}.")
    ] = "",
    file: Annotated[Path | None, typer.Option(help="Any audit log file instead.")] = None,
    last: Annotated[int, typer.Option(min=1, help="How many entries, newest last.")] = 20,
) -> None:
    """Admin actions a service recorded: when, who, what, on what, and how it ended
    (refused attempts included). The log's hash chain is checked first: an edited,
    removed or reordered entry fails the command, naming the line."""
    if file is None:
        if service not in SERVICES:
            console.print(f"[red]name a service ({', '.join(SERVICES)}) or --file")
            raise typer.Exit(code=2)
        file = endpoints.audit_log(endpoints.current().state, service)
    if not file.is_file():
        console.print(f"[red]no audit log at {file}")
        raise typer.Exit(code=1)
    try:
        entries = AuditLog(file).entries()
    except AuditLogCorrupt as error:
        console.print(f"[red]{error}")
        raise typer.Exit(code=1) from None
    table = Table("#", "at (UTC)", "actor", "action", "target", "outcome", title=str(file))
    for entry in entries[-last:]:
        detail = dict(entry.detail)
        code = detail.pop("code", "")
        outcome = " ".join([code, *(f"{k}={v}" for k, v in detail.items())]).strip()
        colour = "red" if code in {c.name for c in REFUSED} else "default"
        table.add_row(
            str(entry.seq),
            datetime.fromtimestamp(entry.at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            entry.actor,
            entry.action,
            shorten(entry.target, 60),
            f"[{colour}]{shorten(outcome, 60)}[/{colour}]",
        )
    console.print(table)
    console.print(f"{len(entries)} entries, chain intact")


# --- status -------------------------------------------------------------------------------
def _health(found: endpoints.Endpoints, service: str) -> str:
    try:
        with found.channel(service) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
    except grpc.RpcError as error:
        return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@app.command()
def status() -> None:
    """Services' health; registered models, versions and aliases; each champion's health
    in production (online error, drift, whether to retrain)."""
    found = endpoints.current()
    services = Table("service", "address", "health")
    health = {service: _health(found, service) for service in SERVICES}
    for service, state in health.items():
        colour = "green" if state == "SERVING" else "red"
        services.add_row(service, found.addresses[service], f"[{colour}]{state}[/{colour}]")
    console.print(services)
    found.sign_in_to_mlflow()
    champions = _print_models(found.mlflow) if found.mlflow else []
    if champions and health["evaluator"] == "SERVING":
        _print_model_health(champions)
    if any(state != "SERVING" for state in health.values()):
        raise typer.Exit(code=1)


def _print_models(tracking_uri: str) -> list[str]:
    """Prints the registry; returns the models that have a champion."""
    from mlflow import MlflowClient  # only status needs it (a slow import)
    from mlflow.exceptions import MlflowException

    from wavepod.registry import CHAMPION

    models = Table("model", "latest version", "aliases")
    champions = []
    try:
        for model in MlflowClient(tracking_uri).search_registered_models():
            latest = max((int(v.version) for v in model.latest_versions), default=0)
            aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(model.aliases.items()))
            models.add_row(model.name, str(latest or ""), aliases)
            if CHAMPION in model.aliases:
                champions.append(model.name)
    except MlflowException as error:
        console.print(f"[red]MLflow at {tracking_uri}[/red]: {error.message}")
        return []
    console.print(models)
    return champions


def _print_model_health(models: list[str]) -> None:
    stub, metadata = _stub("evaluator", evaluator_pb2_grpc.EvaluatorServiceStub)
    table = Table("champion", "predictions", "labelled", "online MAE", "drifted", "retrain", "why")
    for name in models:
        request = E.GetModelHealthRequest(model=refs_pb2.ModelRef(name=name))
        try:
            health = stub.GetModelHealth(request, metadata=metadata, timeout=60)
        except grpc.RpcError as error:
            table.add_row(name, "", "", "", "", "", f"{error.code().name}: {error.details()}")
            continue
        metrics = health.online_metrics
        table.add_row(
            f"{name}:{health.model.version}",
            f"{metrics.get('predictions', 0):,.0f}",
            f"{metrics.get('labelled', 0):,.0f}",
            f"{metrics['mae']:.2f}" if "mae" in metrics else "",
            ", ".join(d.feature for d in health.drift if d.drifted),
            "[red]yes[/red]" if health.retrain_recommended else "no",
            "; ".join(health.reasons)[:80],
        )
    console.print(table)


if __name__ == "__main__":
    app()
