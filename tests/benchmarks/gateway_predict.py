"""Predict through the gateway versus `mlflow models serve` of the same model.

    ./pants run tests/benchmarks:gateway_predict -- --quick --json dist/gp.json

A refill model is trained on a simulated pharmacy's training set (exported to ONNX as
the trainer does), registered in a real MLflow server and published to the inference
service. Measured in one run, closed-loop clients with 1, 8 and 32 requests in flight,
one row per request:
- gateway Predict with inline features (validated against the signature, micro-batched
  onto the inference service over the v2 protocol);
- gateway PredictStream with inline features: one stream kept 32 requests ahead of its
  answers (answers in order; the gateway computes a stream's requests concurrently, so
  they share micro-batches);
- gateway Predict with an entity id (online features from the feature service first);
- `mlflow models serve` (1 worker) fed the same rows, encoded, as JSON over HTTP;
- a bare grpc.aio relay in the gateway's place (benchmarks/protocol_floor.py): the same
  requests, one bare hop on to a zeros server for inline rows, two in a row for entity
  ids, nothing else done. What the gateway's hops cost in Python gRPC here: a goal
  beyond the relay's own figure is beyond what this transport allows on this machine.
Goals: inline >= 5x mlflow serve's throughput at concurrency 8 with p99 <= 1/3 of its;
entity lookup p50 <= 1 ms and p99 <= 3 ms at concurrency 1. The clients share the
machine with four server processes (2 cores here). Each run also meters the CPU time of
the servers a request passes through (gateway and inference, plus the feature service
for entity ids; mlflow serve with its worker; the relay and its zeros server): CPU per
answer, compared without a goal, does not depend on the load generator's share.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import polars as pl
from benchmarks.harness import Comparison, Measurement, Report, parse_args, percentile
from benchmarks.serving import (
    Call,
    ServerCpu,
    closed_loop,
    mlflow_call,
    mlflow_serve,
    protocol_floor,
    record,
    register_onnx,
    wait_http,
)

from feature.testing import small_pharmacy, write_lake
from gateway.testing import publish_model, train_refill_model
from inference.repository import ModelRepository
from wavepod.common.v1 import values_pb2
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime.testing.process import free_port, service_process
from wavepod.testing.mlflow import mlflow_server
from wavepod.values import to_value

SIZES = {"quick": (300, 2.0), "full": (3000, 10.0)}  # patients, seconds per measurement
CONCURRENCY = (1, 8, 32)
RELAY = "bare grpc.aio relay"
STREAM_IN_FLIGHT = 32
STREAM = f"gateway inline, one PredictStream ({STREAM_IN_FLIGHT} in flight)"


def inline_requests(rows: list[dict[str, object]]) -> list[gateway_pb2.PredictRequest]:
    return [
        gateway_pb2.PredictRequest(
            rows=[values_pb2.Row(values={k: to_value(v) for k, v in row.items() if v is not None})]
        )
        for row in rows
    ]


def inline_call(stub: gateway_pb2_grpc.GatewayServiceStub, rows: list[dict[str, object]]) -> Call:
    requests = inline_requests(rows)

    async def call(n: int) -> object:
        return await stub.Predict(requests[n % len(requests)], timeout=30)

    return call


async def stream_loop(
    stub: gateway_pb2_grpc.GatewayServiceStub,
    rows: list[dict[str, object]],
    in_flight: int,
    seconds: float,
) -> list[float]:
    """One PredictStream kept `in_flight` requests ahead of its answers for `seconds`;
    the latency of each answer (answers come in order)."""
    requests = inline_requests(rows)
    slots = asyncio.Semaphore(in_flight)
    sent: deque[float] = deque()
    stop = time.perf_counter() + seconds

    async def outgoing() -> AsyncIterator[gateway_pb2.PredictRequest]:
        n = 0
        while time.perf_counter() < stop:
            await slots.acquire()
            sent.append(time.perf_counter())
            yield requests[n % len(requests)]
            n += 1

    latencies = []
    async for _reply in stub.PredictStream(outgoing(), timeout=seconds + 30):
        latencies.append(time.perf_counter() - sent.popleft())
        slots.release()
    return latencies


def entity_call(stub: gateway_pb2_grpc.GatewayServiceStub, entities: list[str]) -> Call:
    requests = [gateway_pb2.PredictRequest(entity_ids=[e]) for e in entities]

    async def call(n: int) -> object:
        return await stub.Predict(requests[n % len(requests)], timeout=30)

    return call


async def main() -> int:
    args = parse_args(__doc__ or "")
    size = "quick" if args.quick else "full"
    patients, seconds = SIZES[size]
    report = Report("gateway_predict", size)
    state = Path(os.environ.get("TMPDIR", "/tmp")) / f"wavepod-bench-gateway-{os.getpid()}"
    shutil.rmtree(state, ignore_errors=True)
    write_lake(state / "lake", small_pharmacy(patients=patients))
    rates: dict[str, Measurement] = {}
    p99: dict[str, float] = {}
    p50: dict[str, float] = {}

    def note(name: str, latencies: list[float], cpu: ServerCpu) -> None:
        rates[name] = record(report, name, seconds, latencies, cpu)
        p50[name] = percentile(latencies, 0.5) * 1e3
        p99[name] = percentile(latencies, 0.99) * 1e3

    feature_env = {
        "WAVEPOD_FEATURE_LAKE": str(state / "lake"),
        "WAVEPOD_FEATURE_STORE_ROOT": str(state / "features"),
        "WAVEPOD_FEATURE_LOG_LEVEL": "WARNING",
    }
    with (
        mlflow_server(state / "mlflow") as tracking,
        service_process("feature.server", "feature", feature_env) as feature,
    ):
        with grpc.insecure_channel(feature.address) as channel:
            features = feature_pb2_grpc.FeatureServiceStub(channel)
            ref = feature_pb2.FeatureSetRef(name="refill", version="1")
            built = features.BuildTrainingSet(
                feature_pb2.BuildTrainingSetRequest(feature_set=ref), timeout=600
            )
            listed = features.ListFeatureSets(feature_pb2.ListFeatureSetsRequest(), timeout=30)
        names = [f.name for f in listed.feature_sets[0].features]
        training = pl.read_parquet(built.training_set.uri)
        model = train_refill_model(training, names)
        signature = model.signature
        repository = ModelRepository(state / "models")
        publish_model(repository, "refill", 1, model)
        uri = register_onnx(
            tracking,
            model.proto,
            len(names),
            signature.input_name,
            signature.output_name,
            "bench-refill",
        )
        # Rows without missing values: JSON (mlflow serve's input) has no NaN.
        sample = training.filter(pl.col("days_to_next_fill").is_not_null()).drop_nulls(names)
        sample = sample.tail(1000)
        rows = sample.select(names).to_dicts()
        entities = sample["rx_id"].unique().to_list()

        inference_env = {
            "WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repository.root),
            "WAVEPOD_INFERENCE_LOG_LEVEL": "WARNING",
        }
        with service_process("inference.server", "inference", inference_env) as inference:
            gateway_env = {
                "WAVEPOD_GATEWAY_INFERENCE": inference.address,
                "WAVEPOD_GATEWAY_FEATURE_SERVICE": feature.address,
                "WAVEPOD_GATEWAY_PREDICTION_LOG_DIR": str(state / "prediction-log"),
                # The spool is written (and measured); no ingest runs here to ship it to.
                "WAVEPOD_GATEWAY_PREDICTION_LOG_TO_LAKE": "false",
                "WAVEPOD_GATEWAY_AUDIT_LOG": str(state / "audit.jsonl"),
                "WAVEPOD_GATEWAY_LOG_LEVEL": "WARNING",
            }
            with service_process("gateway.server", "gateway", gateway_env) as gateway:
                async with grpc.aio.insecure_channel(gateway.address) as channel:
                    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
                    # Server CPU: the services each path runs through.
                    inline_path = (gateway.process.pid, inference.process.pid)
                    for concurrency in CONCURRENCY:
                        with ServerCpu(*inline_path) as cpu:
                            latencies, errors = await closed_loop(
                                inline_call(stub, rows), concurrency, seconds
                            )
                        assert errors == 0, f"gateway inline: {errors} failed requests"
                        note(f"gateway inline c={concurrency}", latencies, cpu)
                    with ServerCpu(*inline_path) as cpu:
                        latencies = await stream_loop(stub, rows, STREAM_IN_FLIGHT, seconds)
                    note(STREAM, latencies, cpu)
                    for concurrency in CONCURRENCY:
                        with ServerCpu(*inline_path, feature.process.pid) as cpu:
                            latencies, errors = await closed_loop(
                                entity_call(stub, entities), concurrency, seconds
                            )
                        assert errors == 0, f"gateway entity: {errors} failed requests"
                        note(f"gateway entity c={concurrency}", latencies, cpu)
                assert gateway.terminate(timeout=30) == 0

        with protocol_floor() as floor, protocol_floor(relay_to=floor.address) as relay:
            async with grpc.aio.insecure_channel(relay.address) as channel:
                stub = gateway_pb2_grpc.GatewayServiceStub(channel)
                for kind, call in (
                    ("inline", inline_call(stub, rows)),
                    ("entity", entity_call(stub, entities)),
                ):
                    for concurrency in CONCURRENCY:
                        with ServerCpu(floor.pid, relay.pid) as cpu:
                            latencies, errors = await closed_loop(call, concurrency, seconds)
                        assert errors == 0, f"{RELAY} {kind}: {errors} failed requests"
                        note(f"{RELAY} {kind} c={concurrency}", latencies, cpu)

        port = free_port()
        serving = mlflow_serve(uri, tracking, port, state)
        try:
            await wait_http(f"http://127.0.0.1:{port}/ping", serving, state / "mlflow-serve.log")
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                url = f"http://127.0.0.1:{port}/invocations"
                encoded = signature.encode_rows(rows)
                for concurrency in CONCURRENCY:
                    with ServerCpu(serving.pid) as cpu:
                        latencies, errors = await closed_loop(
                            mlflow_call(client, url, signature.input_name, encoded),
                            concurrency,
                            seconds,
                        )
                    assert errors == 0, f"mlflow serve: {errors} failed requests"
                    note(f"mlflow models serve c={concurrency}", latencies, cpu)
        finally:
            serving.terminate()
            serving.wait(timeout=30)

    for concurrency in CONCURRENCY:
        report.compare(
            rates[f"gateway inline c={concurrency}"],
            rates[f"mlflow models serve c={concurrency}"],
            ">= 5" if concurrency == 8 else "",
        )
    report.comparisons.append(
        Comparison(
            "gateway inline c=8 (p99)",
            "mlflow models serve c=8",
            ">= 3",
            p99["mlflow models serve c=8"] / p99["gateway inline c=8"],
        )
    )
    report.comparisons.append(
        Comparison("gateway entity c=1 p50", "goal 1 ms", "<= 1", p50["gateway entity c=1"], "ms")
    )
    report.comparisons.append(
        Comparison("gateway entity c=1 p99", "goal 3 ms", "<= 3", p99["gateway entity c=1"], "ms")
    )
    # One stream carrying as many requests in flight as the widest unary run.
    report.compare(rates[STREAM], rates[f"gateway inline c={STREAM_IN_FLIGHT}"], "")
    report.compare(rates[STREAM], rates[f"mlflow models serve c={STREAM_IN_FLIGHT}"], "")
    # What an answer costs the servers it passes through (gateway and inference; for
    # entity ids the feature service too), against mlflow serve's and the bare relay's.
    for kind in ("inline", "entity"):
        report.compare_cpu(rates[f"gateway {kind} c=8"], rates["mlflow models serve c=8"])
        report.compare_cpu(rates[f"gateway {kind} c=8"], rates[f"{RELAY} {kind} c=8"])
    # Context: the same figures for the bare relay, and the gateway against it.
    report.compare(rates[f"{RELAY} inline c=8"], rates["mlflow models serve c=8"], "")
    for kind in ("inline", "entity"):
        for concurrency in CONCURRENCY:
            report.compare(
                rates[f"gateway {kind} c={concurrency}"],
                rates[f"{RELAY} {kind} c={concurrency}"],
                "",
            )
    for name in ("p50", "p99"):
        figure = (p50 if name == "p50" else p99)[f"{RELAY} entity c=1"]
        report.comparisons.append(Comparison(f"{RELAY} entity c=1 {name}", "", "", figure, "ms"))
    report.emit(args.json)
    shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
