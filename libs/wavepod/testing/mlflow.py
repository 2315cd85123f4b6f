"""A real MLflow tracking server on a free loopback port: sqlite backend, artifacts served
by the server itself (clients upload over HTTP, as they would to a remote server),
optionally behind MLflow's basic-auth app with wavepod's users (wavepod.registry.access)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wavepod.registry.server import MlflowServerSettings, import_path, server_command
from wavepod.runtime.secrets import write_private
from wavepod.runtime.testing.process import free_port

# Neither the server nor clients phone home from tests.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@contextmanager
def mlflow_server(
    state: Path, startup_timeout: float = 120, admin_password: str | None = None
) -> Iterator[str]:
    """Yields the tracking URI, `http://127.0.0.1:PORT`. With `admin_password`, only
    signed-in users get in, and only as far as their roles allow (users in `state`'s
    auth.db; `wavepod.registry.access.provision` makes them)."""
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    backend_store_uri = f"sqlite:///{state / 'mlflow.db'}"
    artifacts_destination = str(state / "artifacts")
    if admin_password is not None:
        # Started as the wavepod/mlflow image starts it (wavepod.registry.server).
        write_private(state / "admin.password", admin_password)
        write_private(state / "secret.key", secrets.token_hex(32))
        settings = MlflowServerSettings(
            host="127.0.0.1",
            port=port,
            workers=1,
            auth_database_uri=f"sqlite:///{state / 'auth.db'}",
            admin_password_file=state / "admin.password",
            secret_key_file=state / "secret.key",
            backend_store_uri=backend_store_uri,
            artifacts_destination=artifacts_destination,
        )
        command, env = server_command(settings, state)
    else:
        command = [sys.executable, "-m", "mlflow", "server", "--workers", "1"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        command += ["--backend-store-uri", backend_store_uri]
        command += ["--artifacts-destination", artifacts_destination]
        env = {**os.environ, "PYTHONPATH": import_path()}
    log = (state / "mlflow-server.log").open("wb")
    process = subprocess.Popen(command, env={**env, **QUIET}, stdout=log, stderr=subprocess.STDOUT)
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
