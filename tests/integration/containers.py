"""The Docker CLI as the container tests drive it (Debian's client, the private daemon
that DOCKER_HOST names)."""

from __future__ import annotations

import os
import shutil
import subprocess

DOCKER = shutil.which("docker", path="/usr/bin:/usr/local/bin") or "docker"


def docker(*args: str, check: bool = True) -> str:
    """Runs the docker CLI; returns stdout (for `logs`: the container's stdout+stderr)."""
    result = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, env=os.environ, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
    return (result.stdout + result.stderr if args[0] == "logs" else result.stdout).strip()
