"""Runs a service module as a real process for tests, the way `pants run` would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_status(
    address: str,
    service: str = "",
    timeout: float = 1.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> int | None:
    channel = (
        grpc.secure_channel(address, credentials)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return None
        return int(reply.status)


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text()

    def terminate(self, timeout: float) -> int:
        """Sends SIGTERM and waits for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def service_process(
    module: str,
    service: str,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 60,
    port: int | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    pex: Path | None = None,
) -> Iterator[ServiceProcess]:
    """Starts `python -m module` (or the service's `pex`, which brings its own code and
    dependencies) with WAVEPOD_<SERVICE>_PORT set (a free one unless given, e.g. to
    restart a service where its clients expect it), waits for SERVING (over TLS with
    `credentials`, for a service that serves TLS)."""
    port = port or free_port()
    prefix = f"WAVEPOD_{service.upper()}_"
    child_env = {
        **os.environ,
        # The test's own import path (Pants' sandbox PEX) so the child sees the same code.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        f"{prefix}PORT": str(port),
        f"{prefix}HOST": "127.0.0.1",
        **(env or {}),
    }
    command = [sys.executable, "-m", module]
    if pex is not None:
        command = [sys.executable, str(pex)]
        child_env.pop("PYTHONPATH")
    address = f"127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile(prefix=f"{service}-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        proc = subprocess.Popen(command, env=child_env, stdout=log, stderr=log)
    handle = ServiceProcess(proc, address, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while (
            health_status(address, credentials=credentials)
            != health_pb2.HealthCheckResponse.SERVING
        ):
            if proc.poll() is not None:
                raise RuntimeError(f"{module} exited with {proc.returncode}:\n{handle.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{module} not SERVING after {startup_timeout}s:\n{handle.logs()}"
                )
            time.sleep(0.1)
        yield handle
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
