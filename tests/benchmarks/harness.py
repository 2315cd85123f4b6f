"""Shared benchmark plumbing: the CLI flags, timing, the table and the JSON file.

Every benchmark compares wavepod with a named peer on the same input in the same run
and reports `ratio = wavepod rate / peer rate` (above 1: wavepod is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table


def parse_args(
    description: str, configure: Callable[[argparse.ArgumentParser], object] | None = None
) -> argparse.Namespace:
    """The common flags, plus a benchmark's own (`configure` adds them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke size, for CI")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--threads", type=int, default=2)
    if configure is not None:
        configure(parser)
    return parser.parse_args()


@dataclass(frozen=True)
class Measurement:
    name: str
    rows: int
    seconds: float
    # CPU seconds the serving processes spent meanwhile (None: not metered).
    server_cpu_seconds: float | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")

    @property
    def server_cpu_ms_per_row(self) -> float | None:
        if self.server_cpu_seconds is None or not self.rows:
            return None
        return self.server_cpu_seconds * 1e3 / self.rows


@dataclass(frozen=True)
class Comparison:
    wavepod: str
    peer: str
    goal: str  # e.g. ">= 0.8" (wavepod rate / peer rate); "" for an informative ratio
    ratio: float
    # "x" for a ratio; an absolute figure (a latency, a duration, a count) gives its unit.
    unit: str = "x"

    @property
    def shown(self) -> str:
        if self.unit == "x":
            return f"{self.ratio:.2f}x"
        return f"{self.ratio:.3g} {self.unit}".rstrip()

    @property
    def met(self) -> bool | None:
        """None when the comparison is informative only (no goal)."""
        if not self.goal:
            return None
        op, _, value = self.goal.partition(" ")
        return self.ratio >= float(value) if op == ">=" else self.ratio <= float(value)


@dataclass(frozen=True)
class Latency:
    name: str
    calls: int
    p50_ms: float
    p99_ms: float


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Report:
    benchmark: str
    size: str
    measurements: list[Measurement] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    def time(self, name: str, rows: int, run: Callable[[], object]) -> Measurement:
        started = time.perf_counter()
        run()
        measurement = Measurement(name, rows, time.perf_counter() - started)
        self.measurements.append(measurement)
        return measurement

    def compare(self, wavepod: Measurement, peer: Measurement, goal: str) -> None:
        ratio = wavepod.rows_per_second / peer.rows_per_second
        self.comparisons.append(Comparison(wavepod.name, peer.name, goal, ratio))

    def latency(
        self, name: str, call: Callable[[], object], calls: int, warmup: int = 50
    ) -> Latency:
        """Per-call wall time of `call`, after `warmup` untimed calls."""
        for _ in range(warmup):
            call()
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        found = Latency(
            name, calls, percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
        )
        self.latencies.append(found)
        return found

    def compare_cpu(self, wavepod: Measurement, peer: Measurement) -> None:
        """Ratio: the peer's server CPU per row over wavepod's (above 1: wavepod is cheaper).
        Informative: it does not depend on the share of the machine the load generator took."""
        ours, theirs = wavepod.server_cpu_ms_per_row, peer.server_cpu_ms_per_row
        assert ours and theirs, f"no server CPU metered for {wavepod.name} or {peer.name}"
        self.comparisons.append(
            Comparison(f"{wavepod.name} (server CPU/row)", peer.name, "", theirs / ours)
        )

    def compare_latency(self, wavepod: Latency, peer: Latency, goal: str) -> None:
        """Ratio: the peer's p99 over wavepod's (above 1: wavepod is faster)."""
        self.comparisons.append(
            Comparison(f"{wavepod.name} (p99)", peer.name, goal, peer.p99_ms / wavepod.p99_ms)
        )

    def emit(self, path: Path | None) -> None:
        console = Console()
        table = Table(title=f"{self.benchmark} ({self.size})")
        metered = any(m.server_cpu_seconds is not None for m in self.measurements)
        columns = ("run", "rows", "seconds", "rows/s") + (("server CPU ms/row",) if metered else ())
        for column in columns:
            table.add_column(column, justify="right" if column != "run" else "left")
        for m in self.measurements:
            cells = [m.name, f"{m.rows:,}", f"{m.seconds:.2f}", f"{m.rows_per_second:,.0f}"]
            if metered:
                cpu = m.server_cpu_ms_per_row
                cells.append("" if cpu is None else f"{cpu:.3f}")
            table.add_row(*cells)
        if self.measurements:
            console.print(table)
        if self.latencies:
            latencies = Table(title=f"{self.benchmark} latency ({self.size})")
            for column in ("call", "calls", "p50 ms", "p99 ms"):
                latencies.add_column(column, justify="right" if column != "call" else "left")
            for lat in self.latencies:
                latencies.add_row(
                    lat.name, f"{lat.calls:,}", f"{lat.p50_ms:.3f}", f"{lat.p99_ms:.3f}"
                )
            console.print(latencies)
        ratios = Table(
            title="wavepod speed-up over the peer (rows/s, p99 or server CPU per row; above 1:"
            " better), and absolute figures against their goals"
        )
        for column in ("wavepod", "peer", "figure", "goal", "met"):
            ratios.add_column(column)
        for c in self.comparisons:
            ratios.add_row(
                c.wavepod,
                c.peer,
                c.shown,
                c.goal,
                {True: "yes", False: "NO", None: "-"}[c.met],
            )
        console.print(ratios)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps(
                    {
                        "benchmark": self.benchmark,
                        "size": self.size,
                        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                        "measurements": [
                            {
                                **asdict(m),
                                "rows_per_second": m.rows_per_second,
                                "server_cpu_ms_per_row": m.server_cpu_ms_per_row,
                            }
                            for m in self.measurements
                        ],
                        "latencies": [asdict(lat) for lat in self.latencies],
                        "comparisons": [{**asdict(c), "met": c.met} for c in self.comparisons],
                    },
                    indent=2,
                )
            )


def run_sizes(
    benchmark: str,
    args: argparse.Namespace,
    sizes: dict[str, list[int]],
    run_size: Callable[[int, Path, Report], None],
) -> int:
    """Runs `run_size` for each size of the chosen mode in a scratch folder; emits."""
    size = "quick" if args.quick else "full"
    report = Report(benchmark, size)
    with tempfile.TemporaryDirectory(prefix="wavepod-bench-") as tmp:
        for n in sizes[size]:
            run_size(n, Path(tmp), report)
    report.emit(args.json)
    return 0
