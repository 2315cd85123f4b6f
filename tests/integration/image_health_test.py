"""A service image built by Pants runs as a container and answers health from the host.

Needs a Docker daemon (DOCKER_HOST; `eval "$(deploy/docker/dockerd.sh start)"`) and
the base image (`deploy/docker/base-image.sh`); .ci/run provides both. Pants builds
the image before the test through `runtime_package_dependencies`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from grpc_health.v1 import health_pb2
from integration.containers import docker

from wavepod.runtime.testing.process import free_port, health_status

IMAGE_INFO = Path("services.gateway/image.docker-info.json")


def test_gateway_container_serves_health_and_stops_cleanly() -> None:
    info = json.loads(IMAGE_INFO.read_text())
    tags = [t["name"] for r in info["registries"] for t in r["tags"]]
    git_sha_tag = next(t for t in tags if not t.endswith(":latest"))
    labels = json.loads(docker("inspect", "--format", "{{json .Config.Labels}}", git_sha_tag))
    assert labels["org.opencontainers.image.revision"] == git_sha_tag.split(":")[1]
    assert docker("inspect", "--format", "{{.Config.User}}", git_sha_tag) == "65532:65532"

    port = free_port()
    container = docker(
        "run", "-d", "--network=host", "-e", f"WAVEPOD_GATEWAY_PORT={port}", git_sha_tag
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while status != health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
            time.sleep(0.5)
            status = health_status(f"127.0.0.1:{port}")
        assert status == health_pb2.HealthCheckResponse.SERVING, docker("logs", container)
        docker("stop", "--time", "15", container)
        assert docker("inspect", "--format", "{{.State.ExitCode}}", container) == "0"
        assert '"msg": "stopped"' in docker("logs", container)
    finally:
        docker("rm", "-f", container, check=False)
