"""The embedded online store: a dict in the serving process (no setup, the default)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from feature.online.store import OnlineRow, OnlineValue, classify, utc


class MemoryStore:
    blocking = False
    # Lives in the process: the engine refills it from the offline store after a restart.
    persistent = False

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        # (table, entity) -> (values, event time, expiry on the monotonic clock)
        self._entries: dict[tuple[str, str], tuple[Mapping[str, object], datetime, float]] = {}
        self._lock = threading.Lock()
        self._monotonic = monotonic

    def write(self, table: str, rows: Sequence[OnlineRow], ttl: timedelta) -> int:
        expires = self._monotonic() + ttl.total_seconds()
        written = 0
        with self._lock:
            for row in rows:
                key = (table, row.entity_id)
                event_time = utc(row.event_time)
                current = self._entries.get(key)
                if current is None or current[1] <= event_time or current[2] < self._monotonic():
                    self._entries[key] = (dict(row.values), event_time, expires)
                    written += 1
        return written

    def read(
        self, table: str, entity_ids: Sequence[str], now: datetime, max_age: timedelta | None
    ) -> list[OnlineValue]:
        moment = self._monotonic()
        out = []
        with self._lock:
            for entity_id in entity_ids:
                entry = self._entries.get((table, entity_id))
                found = entry[:2] if entry is not None and entry[2] >= moment else None
                out.append(classify(entity_id, found, utc(now), max_age))
        return out

    def close(self) -> None:
        self._entries.clear()
