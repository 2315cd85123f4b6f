"""Helpers for the evaluator's end-to-end tests: trainer runs, and prediction-log and
feedback records landed through ingest exactly as the gateway sends them."""

from __future__ import annotations

import asyncio

import grpc

from gateway.feedback import Feedback, FeedbackForwarder
from gateway.ingest_client import IngestClient
from gateway.log_shipper import PREDICTION_LOG_SCHEMA, to_event
from wavepod.feature.v1 import feature_pb2
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc

Metadata = tuple[tuple[str, str], ...]  # gRPC call metadata (a bearer token)


def train(
    address: str, model: str, trials: int, seed: int, metadata: Metadata | None = None
) -> str:
    """A trainer run of the refill set to completion; the registered version."""
    spec = trainer_pb2.RunSpec(
        model_name=model,
        feature_set=feature_pb2.FeatureSetRef(name="refill", version="1"),
        label_column="days_to_next_fill",
        budget=trainer_pb2.SearchBudget(max_trials=trials, max_seconds=300),
        seed=seed,
        baseline_feature="days_supply",
    )
    with grpc.insecure_channel(address) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        started = stub.StartRun(
            trainer_pb2.StartRunRequest(spec=spec), timeout=60, metadata=metadata
        )
        watch = trainer_pb2.WatchRunRequest(run_id=started.run_id)
        list(stub.WatchRun(watch, timeout=600, metadata=metadata))
        run = stub.GetRun(
            trainer_pb2.GetRunRequest(run_id=started.run_id), timeout=30, metadata=metadata
        )
    assert run.state == trainer_pb2.RUN_STATE_SUCCEEDED, run.error
    return run.registered_model.version


def land(ingest: str, records: list[dict], outcomes: dict[str, float]) -> None:
    """Prediction-log records and their observed outcomes into the lake through ingest."""

    async def send() -> None:
        async with grpc.aio.insecure_channel(ingest) as channel:
            client = IngestClient(channel, 60.0)
            await client.send(PREDICTION_LOG_SCHEMA, [to_event(r) for r in records])
            forwarder = FeedbackForwarder(client)
            # Together, as concurrent callers would: the forwarder lands them in shared
            # commits instead of one each.
            await asyncio.gather(
                *(
                    forwarder.submit(Feedback(prediction_id, "", None, observed), "pharmacy")
                    for prediction_id, observed in outcomes.items()
                )
            )

    asyncio.run(send())
