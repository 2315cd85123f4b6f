"""Single-row ModelInfer: wavepod inference versus `mlflow models serve` and in-process ORT.

    ./pants run tests/benchmarks:inference_serving -- --quick --json dist/is.json

One LightGBM model (exported as the trainer exports it) is registered in a real MLflow
server and published to a Triton-layout repository. Measured in one run, closed-loop
clients with 1, 8 and 64 requests in flight, one row per request:
- wavepod inference (tritonclient.grpc.aio), dynamic batching on, and the same model
  with batching off;
- `mlflow models serve` of the registered version (1 worker, JSON over HTTP, httpx);
- ONNX Runtime in process (the floor: no network, no protocol, no queue);
- a bare grpc.aio server answering ModelInfer with zeros (the protocol floor: what one
  Python gRPC hop with this client costs here; benchmarks/protocol_floor.py).
Goals: >= 3x mlflow serve's throughput at concurrency 8; dynamic batching >= 2x the
throughput of batching off at concurrency 64 with no worse p99. Each run also meters the
server's CPU time (mlflow serve's with its worker): CPU per answer, what serving costs
whatever share of the machine the load generator took, is compared without a goal.

Then a swap: publish version 2 while 8 clients call, load it, and time publish -> the
first answer from version 2, counting failed requests (goal <= 1 s, none).
`--gpu` asks for the CUDA provider; the report says which provider ran (tree ensembles
stay on CPU: ONNX Runtime's CUDA provider has no ai.onnx.ml kernels). This environment
has ONNX Runtime's CPU build; on a GPU box run the server from the GPU PEX (the GPU
image's, onnxruntime-gpu):
    ./pants package services/inference:server-gpu
    ./pants run tests/benchmarks:inference_serving -- --gpu \
        --server-pex "$PWD/dist/services.inference/server-gpu.pex"
The load generator shares the machine with the servers (2 cores here): figures are
comparable with each other, not absolute capacities.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from benchmarks.harness import Comparison, Measurement, Report, percentile
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

from inference.repository import ModelRepository
from inference.testing import FEATURES, INPUT, OUTPUT, publish, spec, tree_model
from wavepod.runtime.testing.process import free_port, service_process
from wavepod.testing.mlflow import mlflow_server

SECONDS = {"quick": 2.0, "full": 10.0}
CONCURRENCY = (1, 8, 64)
TREES = 200
BATCHED, UNBATCHED = "tree", "tree_unbatched"
QUEUE_DELAY_US = 2000
FLOOR = "bare grpc.aio ModelInfer"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke size, for CI")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--gpu", action="store_true", help="prefer the CUDA provider")
    parser.add_argument(
        "--server-pex", type=Path, help="run the inference server from this PEX (the GPU one)"
    )
    return parser.parse_args()


def triton_call(client: triton_aio.InferenceServerClient, model: str, rows: np.ndarray) -> Call:
    async def call(n: int) -> object:
        tensor = triton_aio.InferInput(INPUT, [1, FEATURES], "FP32")
        tensor.set_data_from_numpy(rows[n % len(rows)][None, :])
        return await client.infer(model, [tensor])

    return call


async def swap(address: str, repository: ModelRepository, rows: np.ndarray) -> tuple[float, int]:
    """Seconds from publishing version 2 to its first answer, and failed requests."""
    new = tree_model(seed=5, trees=TREES)
    failures = 0
    first_v2: float | None = None
    async with triton_aio.InferenceServerClient(url=address) as client:
        stop = asyncio.Event()

        async def caller(i: int) -> None:
            nonlocal failures, first_v2
            while not stop.is_set():
                tensor = triton_aio.InferInput(INPUT, [1, FEATURES], "FP32")
                tensor.set_data_from_numpy(rows[i][None, :])
                try:
                    result = await client.infer(BATCHED, [tensor])
                except Exception:
                    failures += 1
                    continue
                if result.get_response().model_version == "2" and first_v2 is None:
                    first_v2 = time.perf_counter()

        callers = [asyncio.create_task(caller(i)) for i in range(8)]
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        await asyncio.to_thread(publish, repository, BATCHED, 2, new, spec(max_batch_size=64))
        await client.load_model(BATCHED)
        while first_v2 is None:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*callers)
    return first_v2 - started, failures


async def main(args: argparse.Namespace) -> int:
    size = "quick" if args.quick else "full"
    seconds = SECONDS[size]
    report = Report("inference_serving", size)
    model = tree_model(seed=0, trees=TREES)
    rows = np.random.default_rng(1).normal(size=(1024, FEATURES)).astype(np.float32)
    state = Path(os.environ.get("TMPDIR", "/tmp")) / f"wavepod-bench-inference-{os.getpid()}"
    shutil.rmtree(state, ignore_errors=True)
    repository = ModelRepository(state / "models")
    # A queue delay tuned for throughput, as Triton users tune it: rows gather while the
    # instance is busy; at concurrency 1 every request pays up to this delay.
    publish(
        repository, BATCHED, 1, model, spec(max_batch_size=64, max_queue_delay_us=QUEUE_DELAY_US)
    )
    publish(repository, UNBATCHED, 1, model, spec(max_batch_size=64, max_queue_delay_us=-1))
    env = {
        "WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repository.root),
        "WAVEPOD_INFERENCE_EXECUTION_PROVIDER": "auto" if args.gpu else "cpu",
        "WAVEPOD_INFERENCE_LOG_LEVEL": "WARNING",
    }
    rates: dict[str, dict[int, Measurement]] = {}
    p99: dict[str, dict[int, float]] = {}

    def note(
        name: str, concurrency: int, latencies: list[float], cpu: ServerCpu | None = None
    ) -> None:
        m = record(report, f"{name} c={concurrency}", seconds, latencies, cpu)
        rates.setdefault(name, {})[concurrency] = m
        p99.setdefault(name, {})[concurrency] = percentile(latencies, 0.99)

    # The floor: ONNX Runtime in this process, one row per call.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    floor: list[float] = []
    stop = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < stop:
        started = time.perf_counter()
        session.run(None, {INPUT: rows[n % len(rows)][None, :]})
        floor.append(time.perf_counter() - started)
        n += 1
    note("onnxruntime in-process", 1, floor)

    with service_process("inference.server", "inference", env, pex=args.server_pex) as proc:
        sync = triton.InferenceServerClient(url=proc.address)
        parameters = sync.get_model_config(BATCHED).config.parameters
        provider = parameters["execution_provider"].string_value
        reason = parameters["execution_provider_reason"].string_value
        print(f"wavepod inference ran on {provider}: {reason}")
        sync.close()
        async with triton_aio.InferenceServerClient(url=proc.address) as client:
            for name, model_name in (
                ("wavepod batching", BATCHED),
                ("wavepod no batching", UNBATCHED),
            ):
                for concurrency in CONCURRENCY:
                    with ServerCpu(proc.process.pid) as cpu:
                        latencies, errors = await closed_loop(
                            triton_call(client, model_name, rows), concurrency, seconds
                        )
                    assert errors == 0, f"{name}: {errors} failed requests"
                    note(name, concurrency, latencies, cpu)
        swap_seconds, swap_failures = await swap(proc.address, repository, rows)
        assert proc.terminate(timeout=30) == 0

    with protocol_floor() as bare:
        async with triton_aio.InferenceServerClient(url=bare.address) as client:
            for concurrency in CONCURRENCY:
                with ServerCpu(bare.pid) as cpu:
                    latencies, errors = await closed_loop(
                        triton_call(client, BATCHED, rows), concurrency, seconds
                    )
                assert errors == 0, f"protocol floor: {errors} failed requests"
                note(FLOOR, concurrency, latencies, cpu)

    with mlflow_server(state / "mlflow") as tracking:
        uri = register_onnx(tracking, model.proto, FEATURES, INPUT, OUTPUT, "bench-tree")
        port = free_port()
        log = state / "mlflow-serve.log"
        serving = mlflow_serve(uri, tracking, port, state)
        try:
            await wait_http(f"http://127.0.0.1:{port}/ping", serving, log)
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                for concurrency in CONCURRENCY:
                    with ServerCpu(serving.pid) as cpu:
                        latencies, errors = await closed_loop(
                            mlflow_call(
                                client, f"http://127.0.0.1:{port}/invocations", INPUT, rows
                            ),
                            concurrency,
                            seconds,
                        )
                    assert errors == 0, f"mlflow serve: {errors} failed requests"
                    note("mlflow models serve", concurrency, latencies, cpu)
        finally:
            serving.terminate()
            serving.wait(timeout=30)

    for concurrency in CONCURRENCY:
        report.compare(
            rates["wavepod batching"][concurrency],
            rates["mlflow models serve"][concurrency],
            ">= 3" if concurrency == 8 else "",
        )
    for name in ("wavepod batching", "wavepod no batching"):  # what an answer costs
        report.compare_cpu(rates[name][8], rates["mlflow models serve"][8])
    report.compare(rates["wavepod batching"][64], rates["wavepod no batching"][64], ">= 2")
    report.comparisons.append(
        Comparison(
            "wavepod batching c=64 (p99)",
            "wavepod no batching c=64",
            ">= 1",
            p99["wavepod no batching"][64] / p99["wavepod batching"][64],
        )
    )
    report.compare(rates["wavepod batching"][1], rates["onnxruntime in-process"][1], "")
    for concurrency in CONCURRENCY:  # the share of one bare Python gRPC hop's rate
        report.compare(rates["wavepod batching"][concurrency], rates[FLOOR][concurrency], "")
    report.compare_cpu(rates["wavepod batching"][8], rates[FLOOR][8])
    print(
        f"swap: version 2 answered {swap_seconds * 1000:.0f} ms after publishing began;"
        f" {swap_failures} failed requests"
    )
    report.comparisons.append(
        Comparison("swap: publish -> v2 serving", "goal 1 s", "<= 1", swap_seconds, "s")
    )
    report.comparisons.append(
        Comparison("swap: failed requests", "goal 0", "<= 0", float(swap_failures), "")
    )
    report.emit(args.json)
    shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
