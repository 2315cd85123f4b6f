"""One contract, both backends: the embedded store and a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from feature.online.memory import MemoryStore
from feature.online.store import OnlineRow, OnlineStore, open_online_store
from wavepod.runtime.status import Unavailable
from wavepod.runtime.testing.process import free_port
from wavepod.testing.redis import redis_server

NOW = datetime(2024, 6, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
TABLE = "refill:1"
REDIS_PASSWORD = "online-store-secret"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
    if request.param == "memory":
        yield open_online_store("memory://")
        return
    with redis_server(password=REDIS_PASSWORD) as url:
        backend = open_online_store(url, REDIS_PASSWORD)
        yield backend
        backend.close()


def row(entity: str, hours_ago: float, **values: object) -> OnlineRow:
    return OnlineRow(entity, values, NOW - timedelta(hours=hours_ago))


def test_reads_values_freshness_and_missing_in_request_order(store: OnlineStore) -> None:
    written = store.write(
        TABLE,
        [row("a", 1, gap=30.5, channel="mail"), row("b", 50, gap=7.0, channel="retail")],
        24 * HOUR,
    )
    assert written == 2
    a, missing, b = store.read(TABLE, ["a", "zzz", "b"], NOW, max_age=24 * HOUR)
    assert (a.entity_id, dict(a.values), a.missing, a.stale) == (
        "a",
        {"gap": 30.5, "channel": "mail"},
        False,
        False,
    )
    assert a.event_time == NOW - HOUR
    assert missing.missing and not missing.values and missing.event_time is None
    assert b.stale and not b.missing  # older than max_age: served, but flagged
    assert store.read("other:1", ["a"], NOW, None)[0].missing  # tables are separate


def test_newest_event_wins_even_when_it_arrives_first(store: OnlineStore) -> None:
    store.write(TABLE, [row("a", 1, gap=1.0)], 24 * HOUR)
    assert store.write(TABLE, [row("a", 5, gap=5.0)], 24 * HOUR) == 0  # late, older
    assert store.write(TABLE, [row("a", 0, gap=0.0)], 24 * HOUR) == 1
    assert dict(store.read(TABLE, ["a"], NOW, None)[0].values) == {"gap": 0.0}


def test_batches_of_a_hundred(store: OnlineStore) -> None:
    store.write(TABLE, [row(f"e{i}", 1, i=i) for i in range(100)], HOUR)
    values = store.read(TABLE, [f"e{i}" for i in range(100)], NOW, None)
    assert [v.values["i"] for v in values] == list(range(100))


def test_entries_expire_after_their_ttl(store: OnlineStore) -> None:
    store.write(TABLE, [row("a", 1, gap=1.0)], timedelta(milliseconds=300))
    assert not store.read(TABLE, ["a"], NOW, None)[0].missing
    time.sleep(0.5)
    assert store.read(TABLE, ["a"], NOW, None)[0].missing


def test_memory_ttl_uses_its_clock() -> None:
    clock = [100.0]
    store = MemoryStore(monotonic=lambda: clock[0])
    store.write(TABLE, [row("a", 1, gap=1.0)], timedelta(seconds=10))
    clock[0] = 109.0
    assert not store.read(TABLE, ["a"], NOW, None)[0].missing
    clock[0] = 111.0
    assert store.read(TABLE, ["a"], NOW, None)[0].missing


def test_an_unreachable_redis_is_unavailable() -> None:
    store = open_online_store(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Unavailable, match="redis"):
        store.read(TABLE, ["a"], NOW, None)


def test_a_redis_that_requires_a_password_refuses_a_wrong_one() -> None:
    with redis_server(password=REDIS_PASSWORD) as url:
        for password in ("", "not-the-password"):
            store = open_online_store(url, password)
            with pytest.raises(Unavailable, match="redis") as refused:
                store.write(TABLE, [row("a", 1, gap=1.0)], timedelta(hours=1))
            assert REDIS_PASSWORD not in str(refused.value)
            store.close()


def test_unknown_store_urls_are_named() -> None:
    with pytest.raises(ValueError, match="cassandra://x"):
        open_online_store("cassandra://x")
