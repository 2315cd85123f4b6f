"""The Redis online store: one key per entity (`wavepod:<table>:<entity>`) holding JSON,
written by a Lua script so that "newest event wins" is atomic, with a TTL per key."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import redis

from feature.online.store import OnlineRow, OnlineValue, classify, utc
from wavepod.runtime.status import Unavailable

# KEYS[1]: entity key; ARGV: payload, event time (epoch µs), ttl (ms).
_NEWEST_WINS = """
local current = redis.call('GET', KEYS[1])
if current then
  local stored = cjson.decode(current)
  if tonumber(stored['t']) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""


def _micros(moment: datetime) -> int:
    return int(utc(moment).timestamp() * 1_000_000)


def _json_default(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in the online store")


class RedisStore:
    blocking = True
    persistent = True

    def __init__(self, url: str, password: str = "", timeout_seconds: float = 2.0) -> None:
        self._client = redis.Redis.from_url(
            url,
            password=password or None,  # from a secret, never part of the URL
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )
        self._newest_wins = self._client.register_script(_NEWEST_WINS)

    @staticmethod
    def _key(table: str, entity_id: str) -> str:
        return f"wavepod:{table}:{entity_id}"

    def write(self, table: str, rows: Sequence[OnlineRow], ttl: timedelta) -> int:
        ttl_ms = max(1, int(ttl.total_seconds() * 1000))
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for row in rows:
                    micros = _micros(row.event_time)
                    payload = json.dumps({"v": row.values, "t": micros}, default=_json_default)
                    self._newest_wins(
                        keys=[self._key(table, row.entity_id)],
                        args=[payload, micros, ttl_ms],
                        client=pipe,
                    )
                return sum(int(r) for r in pipe.execute())
        except redis.RedisError as error:
            raise Unavailable(f"online store (redis) write failed: {error}") from error

    def read(
        self, table: str, entity_ids: Sequence[str], now: datetime, max_age: timedelta | None
    ) -> list[OnlineValue]:
        if not entity_ids:
            return []
        try:
            raw = self._client.mget([self._key(table, e) for e in entity_ids])
        except redis.RedisError as error:
            raise Unavailable(f"online store (redis) read failed: {error}") from error
        out = []
        for entity_id, payload in zip(entity_ids, raw, strict=True):
            found = None
            if payload is not None:
                stored = json.loads(payload)
                event_time = datetime.fromtimestamp(stored["t"] / 1_000_000, UTC)
                found = (stored["v"], event_time)
            out.append(classify(entity_id, found, utc(now), max_age))
        return out

    def close(self) -> None:
        self._client.close()
