"""Start the stack and run the refill flywheel once:

    simulator -> three customer sources -> ingest -> feature -> trainer (MLflow)
    -> register -> evaluate (gate) -> promote: publish + champion alias -> inference
    -> gateway -> predictions

    ./pants run deploy/local:up                 # keeps serving until Ctrl-C
    ./pants run deploy/local:up -- --once       # exits 0 after the summary

Everything lives under one state directory (`--state`, default .wavepod/stack): the
simulated customer data, the lake, features, MLflow's database and artifacts, the model
repository, prediction logs, secrets. A second start reuses it: the simulator's data is
kept, ingest lands nothing twice, the trainer registers a new version, and the evaluator
promotes it only if it passes its gate against the champion.
Services start in dependency order, each only once healthy (gRPC health SERVING).

Every service checks bearer tokens, as under Compose: each calling service presents its
own, with only the roles `deploy/compose/service-roles` gives it, and a person uses the
operator token (every role) that each start writes to `<state>/operator.token` (mode
600), where the `wavepod` CLI finds it. MLflow lets in only signed-in users: one per
service with its role (wavepod.registry.access), passwords under `<state>/mlflow/` (mode
600; the operator's is the CLI's, read-only). Services listen on loopback only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Annotated

import grpc
import numpy as np
import polars as pl
import typer
from mlflow import MlflowClient
from rich.console import Console
from rich.table import Table

from wavepod.cli.endpoints import (
    OPERATOR_TOKEN_FILE,
    Metadata,
    audit_log,
    bearer,
    mlflow_password_file,
    write_endpoints,
)
from wavepod.cli.train import watch_run
from wavepod.common.v1 import refs_pb2, values_pb2
from wavepod.evaluator.v1 import evaluator_pb2 as E
from wavepod.evaluator.v1 import evaluator_pb2_grpc
from wavepod.feature.v1 import feature_pb2
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.registry import CHAMPION, alias_version
from wavepod.registry.access import ADMIN, USER_ROLES, Credentials, provision, signed_in
from wavepod.runtime.secrets import write_private
from wavepod.runtime.testing.process import ServiceProcess, service_process
from wavepod.runtime.testing.service_tokens import service_tokens
from wavepod.runtime.testing.streams import drain_progress
from wavepod.signature import ModelSignature
from wavepod.simulator.config import SimulationConfig
from wavepod.simulator.generate import simulate
from wavepod.simulator.publish import publish_all
from wavepod.simulator.rest_api import serve_fills
from wavepod.simulator.schemas import REFILL_SCHEMAS
from wavepod.testing.mlflow import mlflow_server
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from wavepod.values import to_value

MODEL = "refill"
LABEL = "days_to_next_fill"
BASELINE = "days_supply"
DEFAULT_STATE = Path(".wavepod/stack")
console = Console()


def _secret(path: Path) -> str:
    """A random secret kept in the state directory (mode 600), made on first start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip()


def _customer_data(state: Path, patients: int, seed: int) -> Path:
    customer = state / "customer"
    if not (customer / "fills.csv").exists():
        with console.status(f"simulating a pharmacy of {patients:,} patients"):
            data = simulate(
                SimulationConfig(
                    patients=patients, seed=seed, start=date(2023, 1, 1), end=date(2024, 7, 1)
                )
            )
            publish_all(data, customer)
    return customer


def _ingest(address: str, auth: Metadata, customer: Path, fills_api: str) -> dict[str, int]:
    landed = {}
    with grpc.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        for schema in REFILL_SCHEMAS:
            request = ingest_pb2.RegisterSchemaRequest(schema=schema)
            stub.RegisterSchema(request, metadata=auth, timeout=30)
        sources = [
            ingest_pb2.SourceSpec(
                dataset="patients",
                kind=ingest_pb2.SOURCE_KIND_SQL,
                location=str(customer / "patients.db"),
                query="SELECT * FROM patients",
            ),
            ingest_pb2.SourceSpec(
                dataset="prescriptions",
                kind=ingest_pb2.SOURCE_KIND_FILES,
                location=str(customer / "prescriptions" / "prescriptions_*.csv"),
            ),
            ingest_pb2.SourceSpec(
                dataset="fills",
                kind=ingest_pb2.SOURCE_KIND_REST,
                location=fills_api,
                secret_ref="env:WAVEPOD_STACK_FILLS_API_TOKEN",
            ),
        ]
        for spec in sources:  # in order: references need their targets
            source_id = stub.RegisterSource(
                ingest_pb2.RegisterSourceRequest(source=spec), metadata=auth, timeout=30
            ).source_id
            with console.status(f"ingesting {spec.dataset}"):
                events = stub.RunIngest(
                    ingest_pb2.RunIngestRequest(source_id=source_id), metadata=auth, timeout=900
                )
                _, report = drain_progress(events, "report")
            landed[spec.dataset] = report.rows_landed
    return landed


def _train(address: str, auth: Metadata, trials: int, seed: int) -> trainer_pb2.Run:
    with grpc.insecure_channel(address) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        spec = trainer_pb2.RunSpec(
            model_name=MODEL,
            feature_set=feature_pb2.FeatureSetRef(name="refill", version="1"),
            label_column=LABEL,
            budget=trainer_pb2.SearchBudget(max_trials=trials, max_seconds=900),
            seed=seed,
            baseline_feature=BASELINE,
        )
        run = stub.StartRun(trainer_pb2.StartRunRequest(spec=spec), metadata=auth, timeout=60)
        if watch_run(stub, run.run_id, auth) != 0:
            raise typer.Exit(code=1)
        return stub.GetRun(trainer_pb2.GetRunRequest(run_id=run.run_id), metadata=auth, timeout=30)


def _evaluate_and_promote(address: str, auth: Metadata, version: str) -> E.Evaluation:
    """The evaluator's gate decides: a version that passes becomes champion (published,
    alias moved, audited); one that fails leaves the champion where it is."""
    with grpc.insecure_channel(address) as channel:
        stub = evaluator_pb2_grpc.EvaluatorServiceStub(channel)
        with console.status(f"evaluating {MODEL} version {version}"):
            evaluation = stub.Evaluate(
                E.EvaluateRequest(candidate=refs_pb2.ModelRef(name=MODEL, version=version)),
                metadata=auth,
                timeout=600,
            )
        if evaluation.passed:
            with console.status(f"promoting {MODEL} version {version}"):
                stub.Promote(
                    E.PromoteRequest(
                        model=refs_pb2.ModelRef(name=MODEL, version=version),
                        evaluation_id=evaluation.evaluation_id,
                        reason=f"stack: passed its gate against {evaluation.reference}",
                    ),
                    metadata=auth,
                    timeout=600,
                )
        return evaluation


def _examples(
    gateway: ServiceProcess, auth: Metadata, tracking: str, run: trainer_pb2.Run, rows: int = 500
) -> dict[str, float]:
    """Predicts, through the gateway, the most recent labelled rows of the run's training
    set (inline) and a few entities (online features); prints both, returns MAEs."""
    tags = MlflowClient(tracking).get_run(run.mlflow_run_id).data.tags  # lineage
    training = pl.read_parquet(tags["wavepod.training_set.uri"])
    client = MlflowClient(tracking)
    signature_file = client.download_artifacts(run.mlflow_run_id, "signature.json")
    signature = ModelSignature.from_json(Path(signature_file).read_text())
    holdout = training.filter(pl.col(LABEL).is_not_null()).sort("label_time").tail(rows)
    names = signature.names
    with grpc.insecure_channel(gateway.address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        request = gateway_pb2.PredictRequest(
            rows=[
                values_pb2.Row(values={k: to_value(v) for k, v in row.items() if v is not None})
                for row in holdout.select(names).to_dicts()
            ]
        )
        answer = stub.Predict(request, metadata=auth, timeout=30)
        entities = holdout["rx_id"].unique(maintain_order=True).head(5).to_list()
        by_entity = stub.Predict(
            gateway_pb2.PredictRequest(entity_ids=entities), metadata=auth, timeout=30
        )
    truth = holdout[LABEL].to_numpy()
    predicted = np.array([p.value for p in answer.predictions])
    baseline = holdout[BASELINE].cast(pl.Float64).to_numpy()
    table = Table(
        "entity", "predicted days to next fill", "model version", title="example predictions"
    )
    for p in by_entity.predictions:
        table.add_row(p.entity_id, f"{p.value:.1f}", by_entity.model.version)
    console.print(table)
    return {
        "model_mae": float(np.mean(np.abs(predicted - truth))),
        "baseline_mae": float(np.mean(np.abs(baseline - truth))),
    }


def up(
    state: Annotated[Path, typer.Option(help="Everything the stack keeps.")] = DEFAULT_STATE,
    patients: Annotated[int, typer.Option(help="Simulated patients (first start).")] = 2000,
    trials: Annotated[int, typer.Option(help="Optuna trials of the training run.")] = 10,
    seed: Annotated[int, typer.Option(help="Simulator and search seed.")] = 7,
    once: Annotated[bool, typer.Option(help="Exit 0 after the summary.")] = False,
) -> None:
    state = state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    customer = _customer_data(state, patients, seed)
    fills_token = _secret(state / "fills-api.token")
    os.environ["WAVEPOD_STACK_FILLS_API_TOKEN"] = fills_token
    pii_key = state / "pii.key"
    _secret(pii_key)
    # New tokens on each start; a person gets every role, the gateway's included.
    tokens = service_tokens(state, operator_roles="admin,predict,feedback")
    auth = bearer(tokens.operator)
    quiet = {"LOG_LEVEL": "WARNING"}
    # MLflow lets in only its users: one per service, with only its role's permissions.
    mlflow_admin = _secret(mlflow_password_file(state, ADMIN))
    mlflow_users = {user: mlflow_password_file(state, user) for user in USER_ROLES}
    with ExitStack() as stack:
        with console.status("starting MLflow"):
            tracking = stack.enter_context(
                mlflow_server(state / "mlflow", admin_password=mlflow_admin)
            )
            passwords = {user: _secret(file) for user, file in mlflow_users.items()}
            provision(tracking, Credentials(ADMIN, mlflow_admin), passwords)

        def start(module: str, service: str, env: dict[str, str]) -> ServiceProcess:
            prefix = f"WAVEPOD_{service.upper()}_"
            # Every service's audit log of admin actions lives in the state directory too.
            audit = {"AUDIT_LOG": str(audit_log(state, service))}
            settings = {prefix + k: v for k, v in {**quiet, **audit, **env}.items()}
            settings |= tokens.env(service)  # check callers' tokens; present its own
            if service in mlflow_users:
                settings[prefix + "MLFLOW_USERNAME"] = service
                settings[prefix + "MLFLOW_PASSWORD_FILE"] = str(mlflow_users[service])
            with console.status(f"starting {service}"):
                return stack.enter_context(
                    service_process(module, service, settings, startup_timeout=120)
                )

        ingest = start(
            "ingest.server",
            "ingest",
            {"LAKE_ROOT": str(state / "lake"), "PII_KEY_REF": f"file:{pii_key}"},
        )
        feature = start(
            "feature.server",
            "feature",
            {"LAKE": f"ingest://{ingest.address}", "STORE_ROOT": str(state / "features")},
        )
        trainer = start(
            "trainer.server",
            "trainer",
            {"FEATURE_SERVICE": feature.address, "MLFLOW_TRACKING_URI": tracking},
        )
        inference = start(
            "inference.server",
            "inference",
            {"MODEL_REPOSITORY": str(state / "models"), "MLFLOW_TRACKING_URI": tracking},
        )
        evaluator = start(
            "evaluator.server",
            "evaluator",
            {
                "MLFLOW_TRACKING_URI": tracking,
                "INFERENCE": inference.address,
                # Model health reads the prediction log and feedback landed through ingest;
                # retraining asks the trainer.
                "LAKE": f"ingest://{ingest.address}",
                "TRAINER": trainer.address,
                # A laptop running seven services: one-row latency is judged loosely here.
                "GATE_LATENCY_BUDGET_MS": "20",
            },
        )
        gateway = start(
            "gateway.server",
            "gateway",
            {
                "INFERENCE": inference.address,
                "FEATURE_SERVICE": feature.address,
                "INGEST": ingest.address,  # feedback, and the prediction log into the lake
                "DEFAULT_MODEL": MODEL,
                "PREDICTION_LOG_DIR": str(state / "prediction-log"),
                # Champion/challenger aliases, once the evaluator sets them; until then
                # the newest published version answers.
                "MLFLOW_TRACKING_URI": tracking,
            },
        )
        # Where `wavepod` (the CLI) finds this stack's services.
        started = {
            "ingest": ingest,
            "feature": feature,
            "trainer": trainer,
            "inference": inference,
            "evaluator": evaluator,
            "gateway": gateway,
        }
        write_endpoints(
            state, {n: p.address for n, p in started.items()}, tracking, tokens.operator
        )
        # The stack reads the registry as a person would: the operator's read-only user.
        stack.enter_context(signed_in(Credentials("operator", passwords["operator"])))
        fills = pl.read_csv(customer / "fills.csv", try_parse_dates=True)
        api = stack.enter_context(serve_fills(fills, fills_token))
        landed = _ingest(ingest.address, auth, customer, api.url)
        run = _train(trainer.address, auth, trials, seed)
        evaluation = _evaluate_and_promote(evaluator.address, auth, run.registered_model.version)
        champion = alias_version(tracking, MODEL, CHAMPION)
        if not champion:
            failed = "; ".join(g.detail for g in evaluation.gates if not g.passed)
            console.print(f"[red]the first model failed its gate ({failed}); nothing to serve")
            raise typer.Exit(code=1)
        maes = _examples(gateway, auth, tracking, run)

        summary = Table("", "", title="wavepod stack")
        summary.add_row("gateway", gateway.address)
        summary.add_row("operator token", str(state / OPERATOR_TOKEN_FILE))
        summary.add_row("MLflow", tracking)
        summary.add_row("state", str(state))
        summary.add_row("rows landed", ", ".join(f"{k} {v:,}" for k, v in landed.items()))
        summary.add_row("trained", f"{MODEL} version {run.registered_model.version}")
        verdict = (
            "passed"
            if evaluation.passed
            else "failed: " + ", ".join(g.gate for g in evaluation.gates if not g.passed)
        )
        summary.add_row("gate", f"{verdict} (against {evaluation.reference})")
        summary.add_row("champion", f"{MODEL} version {champion}")
        m = run.metrics
        summary.add_row(
            "holdout MAE (trainer)",
            f"{m['holdout_mae']:.2f} days vs baseline {m['baseline_holdout_mae']:.2f}",
        )
        summary.add_row(
            "latest 500 rows via gateway",
            f"MAE {maes['model_mae']:.2f} days vs baseline {maes['baseline_mae']:.2f}",
        )
        console.print(summary)
        (state / "summary.json").write_text(
            json.dumps(
                {
                    **maes,
                    "gateway": gateway.address,
                    "version": run.registered_model.version,
                    "gate_passed": evaluation.passed,
                    "champion": champion,
                }
            )
        )
        if once:
            return
        console.print(f"serving on {gateway.address}; Ctrl-C stops the stack")
        stopped = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        stopped.wait()


def main() -> None:
    typer.run(up)


if __name__ == "__main__":
    main()
