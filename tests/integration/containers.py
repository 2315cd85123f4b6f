"""The Docker CLI as the container tests drive it (Debian's client, the private daemon
that DOCKER_HOST names), and what they wait for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from grpc_health.v1 import health_pb2

from wavepod.runtime.testing.process import health_status

DOCKER = shutil.which("docker", path="/usr/bin:/usr/local/bin") or "docker"


def docker(*args: str, check: bool = True) -> str:
    """Runs the docker CLI; returns stdout (for `logs`: the container's stdout+stderr)."""
    result = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, env=os.environ, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
    return (result.stdout + result.stderr if args[0] == "logs" else result.stdout).strip()


def git_sha_tag(image_info: Path) -> str:
    """The git-SHA tag Pants gave an image (from its docker-info.json)."""
    tags = [t["name"] for r in json.loads(image_info.read_text())["registries"] for t in r["tags"]]
    return next(t for t in tags if not t.endswith(":latest"))


def wait_serving(port: int, container: str, timeout: float = 60) -> None:
    """Until the container's service on the host's `port` reports SERVING; its logs if not."""
    deadline = time.monotonic() + timeout
    status = None
    while status != health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
        time.sleep(0.5)
        status = health_status(f"127.0.0.1:{port}")
    assert status == health_pb2.HealthCheckResponse.SERVING, docker("logs", container)
