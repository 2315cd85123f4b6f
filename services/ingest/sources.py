"""Source connectors behind one small interface, chosen by the source's kind.

A connector turns a `SourceSpec` into one `SourceBatch`: the rows (as read; typing and
validation happen in quality.py) and a content hash that makes re-ingesting the same
content a no-op. Register a new kind in `CONNECTORS`.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import duckdb
import polars as pl

from wavepod.duck import connect
from wavepod.runtime.secrets import read_secret
from wavepod.runtime.status import FieldViolation, InvalidArgument, Unavailable


class SourceKind(StrEnum):
    FILES = "files"
    SQL = "sql"


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


class Connector(Protocol):
    def check(self, spec: SourceSpec) -> list[FieldViolation]: ...

    def read(self, spec: SourceSpec) -> SourceBatch: ...


class FilesConnector:
    """CSV or Parquet files matched by a glob; CSV columns are read as text so that a
    bad value quarantines its row instead of failing the file."""

    def check(self, spec: SourceSpec) -> list[FieldViolation]:
        if not spec.location:
            return [FieldViolation("source.location", "a file path or glob is required")]
        return []

    def read(self, spec: SourceSpec) -> SourceBatch:
        paths = sorted(glob.glob(spec.location))
        if not paths:
            raise InvalidArgument(
                FieldViolation("source.location", f"no files match {spec.location!r}")
            )
        digest = hashlib.sha256()
        frames = []
        for path in paths:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            frames.append(self._read_one(Path(path)))
        frame = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
        return SourceBatch(frame, digest.hexdigest(), tuple(paths))

    @staticmethod
    def _read_one(path: Path) -> pl.DataFrame:
        try:
            if path.suffix == ".parquet":
                return pl.read_parquet(path)
            return pl.read_csv(path, infer_schema=False)
        except (pl.exceptions.PolarsError, OSError) as error:
            raise InvalidArgument(
                FieldViolation("source.location", f"{path.name}: malformed input: {error}")
            ) from error


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

    def read(self, spec: SourceSpec) -> SourceBatch:
        postgres = spec.location.startswith(("postgres://", "postgresql://"))
        target = spec.location
        if postgres and spec.secret_ref:  # the password never sits in the stored spec
            scheme, rest = target.split("://", 1)
            user, host = rest.split("@", 1) if "@" in rest else ("", rest)
            password = read_secret(spec.secret_ref, "source.secret_ref")
            target = f"{scheme}://{user}:{quote(password, safe='')}@{host}"
        if not postgres and not Path(spec.location).is_file():
            raise Unavailable(f"SQLite database {spec.location!r} does not exist")
        con = connect(extensions=["postgres_scanner" if postgres else "sqlite_scanner"])
        try:
            kind = "postgres" if postgres else "sqlite"
            try:
                con.execute(f"ATTACH '{target}' AS src (TYPE {kind}, READ_ONLY)")
            except duckdb.Error as error:
                # DuckDB's message may echo the connection string: keep only its first line.
                reason = str(error).replace(target, _redact(target)).splitlines()[0]
                raise Unavailable(f"cannot reach the {kind} source: {reason}") from error
            con.execute("USE src")
            try:
                frame = con.execute(spec.query).pl()
            except duckdb.Error as error:
                raise InvalidArgument(FieldViolation("source.query", str(error))) from error
        finally:
            con.close()
        digest = hashlib.sha256(frame.write_csv().encode())
        return SourceBatch(
            frame, digest.hexdigest(), (f"{kind}:{_redact(spec.location)}", spec.query)
        )


def _redact(location: str) -> str:
    """Drops a password from a URL before it is recorded anywhere."""
    if "://" in location and "@" in location:
        scheme, rest = location.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return location


CONNECTORS: dict[SourceKind, Connector] = {
    SourceKind.FILES: FilesConnector(),
    SourceKind.SQL: SqlConnector(),
}
