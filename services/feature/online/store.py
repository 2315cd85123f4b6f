"""The online store interface, and the choice of backend by URL.

A store keeps, per table (`<feature set>:<version>`) and entity, the values of the
newest event seen: a late write of an older event never overwrites a newer one. Entries
expire `ttl` after they were written (missing afterwards); an entry whose event is older
than the caller's `max_age` is returned but flagged stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class OnlineRow:
    entity_id: str
    values: Mapping[str, object]
    event_time: datetime


@dataclass(frozen=True)
class OnlineValue:
    entity_id: str
    values: Mapping[str, object]  # empty when missing
    event_time: datetime | None
    missing: bool
    stale: bool


class OnlineStore(Protocol):
    # Whether reads wait on I/O (a network store): servers then read off the event loop.
    blocking: bool

    # False when the store's content dies with the process (the embedded store).
    persistent: bool

    def write(self, table: str, rows: Sequence[OnlineRow], ttl: timedelta) -> int:
        """Upserts rows (newest event wins); returns how many replaced or added entries."""

    def read(
        self, table: str, entity_ids: Sequence[str], now: datetime, max_age: timedelta | None
    ) -> list[OnlineValue]:
        """One value per requested id, in order."""

    def close(self) -> None: ...


def utc(moment: datetime) -> datetime:
    """Stores compare times in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def classify(
    entity_id: str,
    found: tuple[Mapping[str, object], datetime] | None,
    now: datetime,
    max_age: timedelta | None,
) -> OnlineValue:
    if found is None:
        return OnlineValue(entity_id, {}, None, missing=True, stale=False)
    values, event_time = found
    stale = max_age is not None and now - event_time > max_age
    return OnlineValue(entity_id, values, event_time, missing=False, stale=stale)


def open_online_store(url: str, password: str = "") -> OnlineStore:
    """`memory://` (embedded, the default) or `redis://host:port/db` (with the password
    the server requires, if any)."""
    if url.startswith(("redis://", "rediss://")):
        from feature.online.redis_store import RedisStore

        return RedisStore(url, password)
    if url in ("", "memory://"):
        from feature.online.memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unknown online store URL {url!r}: use memory:// or redis://host:port/db")
