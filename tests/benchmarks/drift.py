"""Feature drift over 50 features: wavepod versus Evidently's DataDriftPreset, same data.

    ./pants package tests/benchmarks:drift_evidently      # the peer, in its own resolve
    ./pants run tests/benchmarks:drift -- --quick --json dist/drift.json \
        --evidently-pex dist/tests.benchmarks/drift_evidently.pex

Full size: 50 numeric features, 1M reference rows and 100k current rows; a third of the
features drift (mean shift, scale change, a new mode). Measured in one run:
- wavepod: the reference summaries (sorted values, bins, moments) are made once when a
  model is trained (timed, reported apart); the drift check is PSI + exact KS + z-score
  for every feature over the current window (`evaluator.drift.compare_all`).
- Evidently `Report([DataDriftPreset()]).run(current, reference)` on pandas frames, in a
  separate process built from its own resolve (its pins do not fit ours); the figure is
  the report run alone, without reading the Parquet files.
- Agreement: wavepod's KS statistic and p-value against `scipy.stats.ks_2samp`
  (asymptotic), and PSI against `scipy.special.rel_entr` on the same bins, for a few
  features (scipy over 1.1M rows per feature is itself slow).
Goals: the drift check <= 2 s, >= 50x faster than Evidently, agreement within 1e-6.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Comparison, Measurement, Report, parse_args

ARGS = parse_args(
    __doc__ or "",
    lambda parser: parser.add_argument(
        "--evidently-pex",
        type=Path,
        help="the peer: `./pants package tests/benchmarks:drift_evidently`",
    ),
)

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from scipy.special import rel_entr  # noqa: E402
from scipy.stats import ks_2samp  # noqa: E402

from evaluator.drift import (  # noqa: E402
    EPSILON,
    DriftPolicy,
    _bin_counts,
    compare_all,
    summarize,
)

SIZES = {"quick": (20, 100_000, 10_000), "full": (50, 1_000_000, 100_000)}
CHECKED = 3  # features checked against scipy


def make_data(features: int, reference_rows: int, current_rows: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(42)
    reference, current = {}, {}
    for i in range(features):
        name = f"f{i:02d}"
        reference[name] = rng.normal(i, 1 + i % 3, reference_rows)
        values = rng.normal(i, 1 + i % 3, current_rows)
        if i % 3 == 1:
            values += 0.5 * (1 + i % 3)  # mean shift
        elif i % 6 == 2:
            values *= 1.8  # scale change
        current[name] = values
    return reference, current


def evidently(pex: Path, reference: dict, current: dict, folder: Path) -> float:
    pl.DataFrame(reference).write_parquet(folder / "reference.parquet")
    pl.DataFrame(current).write_parquet(folder / "current.parquet")
    found = subprocess.run(
        [
            sys.executable,
            str(pex),
            str(folder / "reference.parquet"),
            str(folder / "current.parquet"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DO_NOT_TRACK": "1"},
    )
    return float(json.loads(found.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    size = "quick" if ARGS.quick else "full"
    features, reference_rows, current_rows = SIZES[size]
    reference, current = make_data(features, reference_rows, current_rows)
    report = Report("drift", size)

    started = time.perf_counter()
    summaries = [summarize(name, values) for name, values in reference.items()]
    report.measurements.append(
        Measurement(
            "wavepod reference summaries (once, at training)",
            features * reference_rows,
            time.perf_counter() - started,
        )
    )
    results = []
    wavepod = report.time(
        "wavepod drift check (PSI + KS + z)",
        features * current_rows,
        lambda: results.extend(compare_all(summaries, current, DriftPolicy())),
    )
    drifted = sum(d.drifted for d in results)

    worst = 0.0
    for summary, drift in list(zip(summaries, results, strict=True))[:CHECKED]:
        name = summary.feature
        expected = ks_2samp(reference[name], current[name], method="asymp")
        q = np.maximum(summary.counts / summary.counts.sum(), EPSILON)
        counts = _bin_counts(np.sort(current[name]), summary.edges)
        p = np.maximum(counts / counts.sum(), EPSILON)
        worst = max(
            worst,
            abs(drift.ks_statistic - expected.statistic),
            abs(drift.ks_p_value - expected.pvalue),
            abs(drift.psi - float(np.sum(rel_entr(p, q) + rel_entr(q, p)))),
        )
    print(f"{drifted} of {features} features drifted; max |wavepod - scipy| = {worst:.2e}")
    # Absolute goals: a difference and a duration.
    report.comparisons.append(Comparison("max |wavepod - scipy|", "bound", "<= 1e-06", worst, ""))
    report.comparisons.append(Comparison("drift check", "bound", "<= 2", wavepod.seconds, "s"))
    if ARGS.evidently_pex is not None:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = evidently(ARGS.evidently_pex, reference, current, Path(tmp))
        peer = Measurement("Evidently DataDriftPreset", features * current_rows, seconds)
        report.measurements.append(peer)
        report.compare(wavepod, peer, ">= 50")
    else:
        print("Evidently not measured: pass --evidently-pex (see the docstring)")
    report.emit(ARGS.json)


if __name__ == "__main__":
    main()
