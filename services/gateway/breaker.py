"""A circuit breaker per backend: after consecutive failures, fail fast for a while."""

from __future__ import annotations

import time

from wavepod.runtime.status import Unavailable


class CircuitBreaker:
    def __init__(self, name: str, failures: int, open_seconds: float) -> None:
        self.name = name
        self._threshold = failures
        self._open_seconds = open_seconds
        self._failures = 0
        self._opened_at: float | None = None

    def check(self) -> None:
        """Raises UNAVAILABLE while open; once the cool-down passes, lets calls probe."""
        if self._opened_at is None:
            return
        waited = time.monotonic() - self._opened_at
        if waited < self._open_seconds:
            raise Unavailable(
                f"{self.name} is failing: circuit open for another"
                f" {self._open_seconds - waited:.1f} s"
            )

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold:
            self._opened_at = time.monotonic()
