"""Changed-only CI selects exactly what a change affects.

Runs the repository's own ./pants on a throwaway clone (the committed tree of the
checkout in WAVEPOD_REPO_ROOT, which ./pants exports) with the same flags as
.github/workflows/ci.yml: `--changed-since=HEAD --changed-dependents=transitive`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVICES = {"ingest", "feature", "trainer", "evaluator", "gateway", "inference"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    source = os.environ.get("WAVEPOD_REPO_ROOT")
    assert source, "WAVEPOD_REPO_ROOT is unset: run through ./pants, which sets it"
    repo = tmp_path_factory.mktemp("changed") / "repo"
    subprocess.run(["git", "clone", "-q", source, str(repo)], check=True)
    yield repo


def changed_targets(repo: Path, edit: str) -> set[str]:
    """Appends a comment to `edit`, lists what changed-only CI would select, reverts."""
    path = repo / edit
    original = path.read_text()
    path.write_text(
        original + "\n// touched\n" if edit.endswith(".proto") else original + "\n# touched\n"
    )
    try:
        result = subprocess.run(
            [
                "./pants",
                "--no-pantsd",
                "--changed-since=HEAD",
                "--changed-dependents=transitive",
                "list",
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        return set(result.stdout.split())
    finally:
        path.write_text(original)


def services_in(targets: set[str]) -> set[str]:
    return {t.split("/")[1].split(":")[0] for t in targets if t.startswith("services/")}


def test_touching_a_lib_selects_the_services_that_depend_on_it(clone: Path) -> None:
    targets = changed_targets(clone, "libs/wavepod/runtime/settings.py")
    assert "libs/wavepod/runtime/settings.py" in targets
    assert services_in(targets) == SERVICES  # every service runs on the runtime
    assert {f"services/{s}:image" for s in SERVICES} <= targets
    assert not any(t.startswith("protos/") for t in targets)


def test_touching_a_service_selects_it_and_the_tests_that_run_it(clone: Path) -> None:
    targets = changed_targets(clone, "services/gateway/server.py")
    # The evaluator's flywheel test runs the gateway as a process; its other tests do not.
    assert services_in(targets) == {"gateway", "evaluator"}
    evaluator = {t for t in targets if t.startswith("services/evaluator")}
    flywheel = "services/evaluator/flywheel_test.py:tests"
    assert flywheel in evaluator <= {flywheel, "services/evaluator:tests"}, evaluator
    assert {"services/gateway:server", "services/gateway:image"} <= targets
    # Only the one-command stack, which starts every service, among the libraries.
    libs = {t for t in targets if t.startswith("libs/")}
    assert libs and all(t.startswith("libs/wavepod/stack") for t in libs)
    assert not any(t.startswith("protos/") for t in targets)


def test_touching_a_proto_selects_generated_code_and_its_dependents(clone: Path) -> None:
    targets = changed_targets(clone, "protos/wavepod/feature/v1/feature.proto")
    assert "protos/wavepod/feature/v1/feature.proto:protos" in targets
    # trainer.proto imports feature.proto, so the trainer is affected too, and so is the
    # evaluator, whose retrain loop starts trainer runs over a feature set; and the tests
    # that run feature or trainer code: the gateway's (a real feature service) and the
    # inference service's (models made by the trainer's export). Not ingest.
    assert "protos/wavepod/trainer/v1/trainer.proto:protos" in targets
    assert services_in(targets) == {"feature", "trainer", "inference", "gateway", "evaluator"}
    assert "services/evaluator:image" in targets
    assert "services/ingest:image" not in targets
    assert "services/inference:image" not in targets  # its server uses no trainer code
