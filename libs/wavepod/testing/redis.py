"""A private redis-server on a free loopback port, for tests (Debian's redis-server;
.ci/run installs it). No persistence: the data dies with the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from wavepod.runtime.testing.process import free_port


@contextmanager
def redis_server(password: str = "") -> Iterator[str]:
    """Yields a `redis://127.0.0.1:PORT/0` URL; with `password`, the server requires it
    (AUTH), as a production one would."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wavepod-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            *(["--requirepass", password] if password else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        for _ in range(100):
            ping = subprocess.run(
                [cli, "-p", str(port), "ping"],
                capture_output=True,
                text=True,
                env={**os.environ, "REDISCLI_AUTH": password},
            )
            if ping.stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not answer PING")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
