"""Source connectors behind one small interface, chosen by the source's kind.

A connector turns a `SourceSpec` into one `SourceBatch`: the rows (as read; typing and
validation happen in quality.py) and a content hash that makes re-ingesting the same
content a no-op. Register a new kind in `CONNECTORS`.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import duckdb
import httpx
import polars as pl

from wavepod.duck import AttachError, attach, connect, is_postgres, redact
from wavepod.runtime.secrets import read_secret
from wavepod.runtime.status import FailedPrecondition, FieldViolation, InvalidArgument, Unavailable


class SourceKind(StrEnum):
    FILES = "files"
    SQL = "sql"
    REST = "rest"


@dataclass(frozen=True)
class SourceSpec:
    dataset: str
    kind: SourceKind
    location: str
    query: str = ""
    secret_ref: str = ""
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SourceBatch:
    frame: pl.DataFrame
    content_hash: str
    inputs: tuple[str, ...]  # what was read: file paths, a database and query


# The column types the schema expects. A connector that parses text may use them to parse
# faster, but must return the raw values whenever any value does not parse, so that
# validation can quarantine exactly the bad rows.
TypeHints = Mapping[str, pl.DataType]


class Connector(Protocol):
    def check(self, spec: SourceSpec) -> list[FieldViolation]: ...

    def read(self, spec: SourceSpec, types: TypeHints | None = None) -> SourceBatch: ...


class FilesConnector:
    """CSV or Parquet files matched by a glob. CSV is parsed with the schema's types when
    every value parses (the common case, and the fast one); otherwise it is re-read as
    text so that a bad value quarantines its row instead of failing the file."""

    def check(self, spec: SourceSpec) -> list[FieldViolation]:
        if not spec.location:
            return [FieldViolation("source.location", "a file path or glob is required")]
        return []

    def read(self, spec: SourceSpec, types: TypeHints | None = None) -> SourceBatch:
        paths = sorted(glob.glob(spec.location))
        if not paths:
            raise InvalidArgument(
                FieldViolation("source.location", f"no files match {spec.location!r}")
            )
        # Hashing (hashlib releases the GIL on large buffers) overlaps with parsing.
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(_sha256_files, paths)
            frames = [self._read_one(Path(path), types) for path in paths]
            content_hash = digest.result()
        frame = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
        return SourceBatch(frame, content_hash, tuple(paths))

    @staticmethod
    def _read_one(path: Path, types: TypeHints | None) -> pl.DataFrame:
        try:
            if path.suffix == ".parquet":
                return pl.read_parquet(path)
            if types:
                try:
                    return pl.read_csv(path, infer_schema=False, schema_overrides=dict(types))
                except pl.exceptions.PolarsError:
                    pass  # some value does not parse: read text, validation finds the rows
            return pl.read_csv(path, infer_schema=False)
        except (pl.exceptions.PolarsError, OSError) as error:
            where = _first_malformed_line(path) if path.suffix != ".parquet" else None
            detail = where or str(error).splitlines()[0]
            raise InvalidArgument(
                FieldViolation("source.location", f"{path.name}: malformed input: {detail}")
            ) from error


def _sha256_files(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _first_malformed_line(path: Path) -> str | None:
    """Finds the line a CSV parser choked on (only on the error path: it is slow)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
            for record in reader:
                if len(record) != len(header):
                    return (
                        f"line {reader.line_num}: {len(record)} fields where the header has"
                        f" {len(header)}"
                    )
        except csv.Error as error:
            return f"line {reader.line_num}: {error}"
        except StopIteration:
            return "the file is empty"
    return None


class SqlConnector:
    """A query against SQLite (file path) or PostgreSQL (postgresql:// URL) through
    DuckDB's scanners, attached read-only."""

    def check(self, spec: SourceSpec) -> list[FieldViolation]:
        found = []
        if not spec.location:
            found.append(
                FieldViolation("source.location", "a SQLite path or postgresql:// URL is required")
            )
        if not spec.query.strip():
            found.append(FieldViolation("source.query", "a SQL query is required"))
        return found

    def read(self, spec: SourceSpec, types: TypeHints | None = None) -> SourceBatch:
        postgres = is_postgres(spec.location)
        if not postgres and not Path(spec.location).is_file():
            raise Unavailable(f"SQLite database {spec.location!r} does not exist")
        password = ""
        if postgres and spec.secret_ref:  # the password never sits in the stored spec
            password = read_secret(spec.secret_ref, "source.secret_ref")
        con = connect(extensions=["postgres_scanner" if postgres else "sqlite_scanner"])
        try:
            try:
                kind = attach(con, spec.location, "src", password=password, read_only=True)
            except AttachError as error:
                raise Unavailable(str(error)) from error
            try:
                frame = con.execute(spec.query).pl()
            except duckdb.Error as error:
                raise InvalidArgument(FieldViolation("source.query", str(error))) from error
        finally:
            con.close()
        digest = hashlib.sha256(frame.write_csv().encode())
        return SourceBatch(
            frame, digest.hexdigest(), (f"{kind}:{redact(spec.location)}", spec.query)
        )


class RestConnector:
    """A paginated JSON API: follows cursors until none is left, retries 429/5xx and
    connection errors with capped exponential backoff and full jitter, never waiting
    less than a Retry-After header asks. The bearer token comes from `secret_ref`.

    Options: page_size (1000), max_retries (6), timeout_seconds (10),
    data_field ("data"), next_field ("next_cursor"), cursor_param ("cursor").
    """

    RETRIABLE = frozenset({429, 500, 502, 503, 504})

    def check(self, spec: SourceSpec) -> list[FieldViolation]:
        found = []
        if not spec.location.startswith(("http://", "https://")):
            found.append(FieldViolation("source.location", "an http(s):// URL is required"))
        for name in ("page_size", "max_retries", "timeout_seconds"):
            value = dict(spec.options).get(name)
            if value is not None and not value.replace(".", "", 1).isdigit():
                found.append(
                    FieldViolation(f"source.options.{name}", f"must be a number, got {value!r}")
                )
        return found

    def read(self, spec: SourceSpec, types: TypeHints | None = None) -> SourceBatch:
        options = dict(spec.options)
        headers = {"Accept": "application/json"}
        if spec.secret_ref:
            headers["Authorization"] = f"Bearer {read_secret(spec.secret_ref, 'source.secret_ref')}"
        page_size = int(options.get("page_size", "1000"))
        digest = hashlib.sha256()
        records: list[dict[str, object]] = []
        cursor: str | None = None
        pages = 0
        with httpx.Client(
            timeout=float(options.get("timeout_seconds", "10")), headers=headers
        ) as client:
            while True:
                params: dict[str, str | int] = {"limit": page_size}
                if cursor:
                    params[options.get("cursor_param", "cursor")] = cursor
                body = self._get(
                    client, spec.location, params, int(options.get("max_retries", "6"))
                )
                digest.update(body)
                page = json.loads(body)
                records += page.get(options.get("data_field", "data")) or []
                cursor = page.get(options.get("next_field", "next_cursor"))
                pages += 1
                if not cursor:
                    break
        frame = pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame()
        return SourceBatch(frame, digest.hexdigest(), (f"{spec.location} ({pages} pages)",))

    def _get(
        self, client: httpx.Client, url: str, params: dict[str, str | int], retries: int
    ) -> bytes:
        for attempt in range(retries + 1):
            wait = min(10.0, 0.2 * 2**attempt) * random.random()  # full jitter
            try:
                response = client.get(url, params=params)
            except httpx.TransportError as error:
                if attempt == retries:
                    raise Unavailable(
                        f"REST source unreachable after {retries + 1} tries: {type(error).__name__}"
                    ) from error
            else:
                if response.status_code == 200:
                    return response.content
                if response.status_code in (401, 403):
                    raise FailedPrecondition(
                        f"REST source refused the credentials ({response.status_code})"
                    )
                if response.status_code not in self.RETRIABLE:
                    raise InvalidArgument(
                        FieldViolation(
                            "source.location", f"REST source answered {response.status_code}"
                        )
                    )
                if attempt == retries:
                    raise Unavailable(
                        f"REST source still answering {response.status_code}"
                        f" after {retries + 1} tries"
                    )
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = max(wait, float(retry_after))
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


CONNECTORS: dict[SourceKind, Connector] = {
    SourceKind.FILES: FilesConnector(),
    SourceKind.SQL: SqlConnector(),
    SourceKind.REST: RestConnector(),
}
