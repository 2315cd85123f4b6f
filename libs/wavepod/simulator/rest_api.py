"""The pharmacy's fills as a paginated REST JSON API on loopback, the way a customer's
system would hand them over: bearer-token auth, opaque cursors, and (on purpose)
occasional 429 and 503 answers that a client must survive.

    GET /v1/fills?cursor=<opaque>&limit=<n>
    -> {"data": [{...}, ...], "next_cursor": "<opaque>" | null}
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import polars as pl

MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Faults:
    """Share of requests answered 429 (with Retry-After) or 503, drawn from a seeded RNG."""

    rate_limited: float = 0.0
    unavailable: float = 0.0
    retry_after_seconds: int = 1
    seed: int = 0


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(cursor: str) -> int:
    return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])


@dataclass
class FillsApi:
    url: str
    requests: int = 0
    faults_served: int = 0


@contextmanager
def serve_fills(
    fills: pl.DataFrame, token: str, faults: Faults | None = None, page_size: int = 1000
) -> Iterator[FillsApi]:
    """Serves `fills` on 127.0.0.1 (a free port) until the context exits."""
    injected = faults or Faults()
    rows = fills.with_columns(pl.col(pl.Date).dt.strftime("%Y-%m-%d"))
    rng = random.Random(injected.seed)
    lock = threading.Lock()
    api = FillsApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _reply(
            self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
        ) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path != "/v1/fills":
                return self._reply(404, {"error": f"no such resource {url.path}"})
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self._reply(401, {"error": "missing or wrong bearer token"})
            with lock:
                api.requests += 1
                draw = rng.random()
            if draw < injected.rate_limited:
                api.faults_served += 1
                return self._reply(
                    429, {"error": "slow down"}, {"Retry-After": str(injected.retry_after_seconds)}
                )
            if draw < injected.rate_limited + injected.unavailable:
                api.faults_served += 1
                return self._reply(503, {"error": "temporarily unavailable"})
            query = parse_qs(url.query)
            try:
                offset = _offset(query["cursor"][0]) if "cursor" in query else 0
                limit = min(int(query.get("limit", [page_size])[0]), MAX_LIMIT)
            except (ValueError, KeyError, json.JSONDecodeError):
                return self._reply(400, {"error": "bad cursor or limit"})
            page = rows.slice(offset, limit)
            following = offset + limit
            self._reply(
                200,
                {
                    "data": page.to_dicts(),
                    "next_cursor": _cursor(following) if following < rows.height else None,
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}/v1/fills"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
