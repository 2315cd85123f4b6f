"""The README's main command, end to end: `up --once` twice on one state directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _up(state: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "wavepod.stack.up", "--state", str(state), "--once"]
    command += ["--patients", "600", "--trials", "3"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "COLUMNS": "200"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def test_the_stack_runs_the_flywheel_and_beats_the_baseline(tmp_path: Path) -> None:
    first = _up(tmp_path / "stack")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    summary = json.loads((tmp_path / "stack" / "summary.json").read_text())
    # Predictions for simulated entities, through the gateway, beat next fill = last
    # fill + days supply on the most recent labelled rows.
    print(summary)
    assert summary["model_mae"] < summary["baseline_mae"]
    assert "example predictions" in first.stdout and "gateway" in first.stdout
    assert summary["gate_passed"] and summary["champion"] == summary["version"]

    # A second start reuses the state: the same data, nothing landed twice, a new version.
    second = _up(tmp_path / "stack")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "patients 0, prescriptions 0, fills 0" in second.stdout
    again = json.loads((tmp_path / "stack" / "summary.json").read_text())
    assert int(again["version"]) == int(summary["version"]) + 1
    assert again["model_mae"] == summary["model_mae"]  # same data + seed: same model
    # As good as the champion (a gain of 0 meets the default gate): promoted.
    assert again["gate_passed"] and again["champion"] == again["version"]
