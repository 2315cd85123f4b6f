"""A service image built by Pants runs as a container and answers health from the host.

Needs a Docker daemon (DOCKER_HOST; `eval "$(deploy/docker/dockerd.sh start)"`) and
the base image (`deploy/docker/base-image.sh`); .ci/run provides both. Pants builds
the image before the test through `runtime_package_dependencies`.
"""

from __future__ import annotations

import json
from pathlib import Path

from integration.containers import docker, git_sha_tag, wait_serving

from wavepod.runtime.testing.process import free_port

IMAGE_INFO = Path("services.gateway/image.docker-info.json")


def test_gateway_container_serves_health_and_stops_cleanly() -> None:
    tag = git_sha_tag(IMAGE_INFO)
    labels = json.loads(docker("inspect", "--format", "{{json .Config.Labels}}", tag))
    assert labels["org.opencontainers.image.revision"] == tag.split(":")[1]
    assert docker("inspect", "--format", "{{.Config.User}}", tag) == "65532:65532"

    port = free_port()
    container = docker("run", "-d", "--network=host", "-e", f"WAVEPOD_GATEWAY_PORT={port}", tag)
    try:
        wait_serving(port, container)
        docker("stop", "--time", "15", container)
        assert docker("inspect", "--format", "{{.State.ExitCode}}", container) == "0"
        assert '"msg": "stopped"' in docker("logs", container)
    finally:
        docker("rm", "-f", container, check=False)
