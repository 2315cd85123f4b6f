"""Per-caller rate limits (token buckets), answered with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import time

from wavepod.runtime.status import ResourceExhausted


class RateLimiter:
    def __init__(self, per_second: float) -> None:
        self._rate = per_second
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, updated)

    def take(self, caller: str) -> None:
        if self._rate <= 0:
            return
        now = time.monotonic()
        tokens, updated = self._buckets.get(caller, (self._rate, now))
        tokens = min(self._rate, tokens + (now - updated) * self._rate)
        if tokens < 1:
            self._buckets[caller] = (tokens, now)
            raise ResourceExhausted(
                f"rate limit of {self._rate:g} requests/s for {caller!r} exceeded; retry later"
            )
        self._buckets[caller] = (tokens - 1, now)
