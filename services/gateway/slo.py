"""A canary's service-level objective, watched over a sliding window of its calls."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Slo:
    max_error_rate: float  # share of failed calls
    max_p95_ms: float  # inference latency, milliseconds
    window_seconds: float
    min_calls: int  # fewer calls in the window prove nothing either way


@dataclass(frozen=True)
class WindowStats:
    calls: int
    error_rate: float
    p95_ms: float


# Judging sorts the window's latencies: do it after every call while the window is small,
# and after every 1/JUDGE_EVERY_SHARE of it once it is large (amortized O(1) per call on
# the canary's hot path instead of a sort per call).
JUDGE_EVERY_SHARE = 100


class SloWindow:
    def __init__(self, slo: Slo) -> None:
        self.slo = slo
        self._calls: deque[tuple[float, bool, float]] = deque()  # (when, ok, latency ms)
        self._since_judged = 0

    def record(self, ok: bool, latency_ms: float, now: float | None = None) -> None:
        self._calls.append((time.monotonic() if now is None else now, ok, latency_ms))
        self._since_judged += 1

    def due(self) -> bool:
        """Whether enough calls arrived since the last judgement to judge again."""
        if self._since_judged < max(1, len(self._calls) // JUDGE_EVERY_SHARE):
            return False
        self._since_judged = 0
        return True

    def stats(self, now: float | None = None) -> WindowStats:
        horizon = (time.monotonic() if now is None else now) - self.slo.window_seconds
        while self._calls and self._calls[0][0] < horizon:
            self._calls.popleft()
        if not self._calls:
            return WindowStats(0, 0.0, 0.0)
        failed = sum(1 for _, ok, _ in self._calls if not ok)
        latencies = [ms for _, ok, ms in self._calls if ok]
        p95 = float(np.percentile(latencies, 95)) if latencies else 0.0
        return WindowStats(len(self._calls), failed / len(self._calls), p95)

    def breach(self, now: float | None = None) -> str:
        """Why the window breaks the SLO ("" while it holds or has too few calls)."""
        s = self.stats(now)
        if s.calls < self.slo.min_calls:
            return ""
        over = f"over the last {self.slo.window_seconds:g} s ({s.calls} calls)"
        if s.error_rate > self.slo.max_error_rate:
            return f"error rate {s.error_rate:.1%} > {self.slo.max_error_rate:.1%} {over}"
        if s.p95_ms > self.slo.max_p95_ms:
            return f"p95 latency {s.p95_ms:.1f} ms > {self.slo.max_p95_ms:g} ms {over}"
        return ""
