"""Shared plumbing of the serving benchmarks: closed-loop load, `mlflow models serve`.

Closed loop: N workers each send a request, wait for its answer and send the next, for a
fixed time; throughput is answers per second, latencies are per answer. The serving
processes' CPU time over the same run gives what one answer costs the server, a figure
that does not depend on how much of the machine the load generator took.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import mlflow
import mlflow.onnx
import numpy as np
import onnx
import psutil
import tritonclient.grpc as triton
from benchmarks.harness import Latency, Measurement, Report, percentile
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from wavepod.runtime.testing.process import free_port

Call = Callable[[int], Awaitable[object]]


async def closed_loop(call: Call, concurrency: int, seconds: float) -> tuple[list[float], int]:
    """`concurrency` workers calling back to back for `seconds`: latencies and errors."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        n = i
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                await call(n)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            n += concurrency

    for n in range(min(concurrency, 8)):  # warm connections
        await call(n)
    # The load generator should not stall on its own full collections (this process holds
    # MLflow, polars and the rest): what it holds now is frozen out of the collector.
    gc.collect()
    gc.freeze()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors


class ServerCpu:
    """CPU seconds that server processes and their children (mlflow serve's uvicorn
    worker) spend inside a `with` block."""

    def __init__(self, *pids: int) -> None:
        self._roots = [psutil.Process(pid) for pid in pids]
        self._start = 0.0
        self.seconds: float | None = None

    def _used(self) -> float:
        total = 0.0
        for root in self._roots:
            for process in (root, *root.children(recursive=True)):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def __enter__(self) -> ServerCpu:
        self._start = self._used()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.seconds = self._used() - self._start


def record(
    report: Report,
    name: str,
    seconds: float,
    latencies: list[float],
    cpu: ServerCpu | None = None,
) -> Measurement:
    """Adds a closed-loop run to the report: its throughput, p50/p99 and server CPU."""
    report.latencies.append(
        Latency(
            name,
            len(latencies),
            percentile(latencies, 0.5) * 1e3,
            percentile(latencies, 0.99) * 1e3,
        )
    )
    measurement = Measurement(name, len(latencies), seconds, cpu.seconds if cpu else None)
    report.measurements.append(measurement)
    return measurement


def mlflow_call(client: httpx.AsyncClient, url: str, input_name: str, rows: np.ndarray) -> Call:
    """One row per request, as JSON tensors (`{"inputs": {name: [[...]]}}`)."""
    bodies = [{"inputs": {input_name: [row.tolist()]}} for row in rows]

    async def call(n: int) -> object:
        reply = await client.post(url, json=bodies[n % len(bodies)])
        reply.raise_for_status()
        return reply

    return call


def register_onnx(
    tracking: str,
    proto: onnx.ModelProto,
    features: int,
    input_name: str,
    output_name: str,
    name: str,
) -> str:
    """Logs and registers `proto` in MLflow (the ONNX flavour); returns its models:/ URI."""
    mlflow.set_tracking_uri(tracking)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, features), input_name)]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1), output_name)]),
    )
    with mlflow.start_run():
        info = mlflow.onnx.log_model(
            proto, name="model", signature=signature, registered_model_name=name
        )
    return f"models:/{name}/{info.registered_model_version}"


def mlflow_serve(model_uri: str, tracking: str, port: int, state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    # `mlflow models serve` runs `uvicorn` by name; inside a PEX there is no such script
    # on PATH, so give it one that runs this interpreter's uvicorn module.
    shim = state / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "uvicorn").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m uvicorn "$@"\n')
    (shim / "uvicorn").chmod(0o755)
    env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
    log = state / "mlflow-serve.log"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", "-w", "1", "-h", "127.0.0.1", "-p", str(port)]
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def wait_http(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited:\n{log.read_text()[-3000:]}")
            try:
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"mlflow models serve did not come up:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class FloorServer:
    address: str
    pid: int


@contextmanager
def protocol_floor(relay_to: str = "", timeout: float = 60) -> Iterator[FloorServer]:
    """Runs benchmarks.protocol_floor (a bare ModelInfer server; with `relay_to`, also a
    bare gateway relaying to that address) as a process."""
    port = free_port()
    env = {**os.environ, "FLOOR_PORT": str(port), "FLOOR_RELAY_TO": relay_to}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.protocol_floor"], env=env)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        client = triton.InferenceServerClient(url=address)
        try:
            while not _live(client):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the protocol floor server is not live at {address}")
                time.sleep(0.1)
        finally:
            client.close()
        yield FloorServer(address, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _live(client: triton.InferenceServerClient) -> bool:
    try:
        return bool(client.is_server_live())
    except Exception:  # not listening yet
        return False
