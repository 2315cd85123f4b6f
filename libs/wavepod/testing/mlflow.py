"""A real MLflow tracking server on a free loopback port: sqlite backend, artifacts served
by the server itself (clients upload over HTTP, as they would to a remote server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wavepod.runtime.testing.process import free_port

# Neither the server nor clients phone home from tests.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@contextmanager
def mlflow_server(state: Path, startup_timeout: float = 120) -> Iterator[str]:
    """Yields the tracking URI, `http://127.0.0.1:PORT`."""
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (state / "mlflow-server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{state / 'mlflow.db'}",
            "--artifacts-destination",
            str(state / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env={**os.environ, **QUIET, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not come up:\n{(state / 'mlflow-server.log').read_text()}"
                )
            time.sleep(0.3)
        os.environ.update(QUIET)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
