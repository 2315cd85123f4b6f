"""The lake's catalog: schema versions, sources, and committed batches (which are also
the lineage records). The catalog is the source of truth for what the lake contains: a
batch exists once its row here is committed.

It lives in a DuckDB file by default, or in PostgreSQL for production (a
`postgresql://user@host/db` location, the password from a secret): the same SQL runs on
both, through DuckDB, which attaches the PostgreSQL database."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import TypeAdapter

from ingest.schema import DatasetSchema
from wavepod.duck import attach, connect, is_postgres, redact

_SCHEMA_JSON = TypeAdapter(DatasetSchema)

# JSON documents are stored as text: the same DDL serves DuckDB and PostgreSQL (an
# upsert through DuckDB's postgres scanner sends text, which a json column refuses).
DDL = """
CREATE TABLE IF NOT EXISTS schemas (
    dataset VARCHAR, version VARCHAR, major INTEGER, minor INTEGER,
    definition VARCHAR, registered_at TIMESTAMP, PRIMARY KEY (dataset, version));
CREATE TABLE IF NOT EXISTS sources (
    source_id VARCHAR PRIMARY KEY, dataset VARCHAR, spec VARCHAR, registered_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS batches (
    batch_id VARCHAR PRIMARY KEY, dataset VARCHAR, source_id VARCHAR, connector VARCHAR,
    content_hash VARCHAR, schema_version VARCHAR, status VARCHAR,
    rows_read BIGINT, rows_landed BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT,
    files VARCHAR, quarantine_file VARCHAR, violations VARCHAR, error VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP, inputs VARCHAR);
"""


def _naive(moment: datetime) -> datetime:
    """DuckDB TIMESTAMP columns hold UTC without a zone (TIMESTAMPTZ would need pytz)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _utc_now() -> datetime:
    return _naive(datetime.now(UTC))


@dataclass(frozen=True)
class Batch:
    batch_id: str
    dataset: str
    source_id: str
    connector: str
    content_hash: str
    schema_version: str
    status: str  # committed | failed
    rows_read: int
    rows_landed: int
    rows_quarantined: int
    rows_duplicate: int
    files: tuple[str, ...]
    quarantine_file: str | None
    violations: dict[str, int]
    error: str | None
    started_at: datetime  # UTC
    finished_at: datetime  # UTC
    inputs: tuple[str, ...] = ()  # what the connector read (files, a database and query)


_BATCH_FIELDS = [f.name for f in fields(Batch)]  # the batches table's column order


def _batch_from_row(row: tuple[Any, ...]) -> Batch:
    record = dict(zip(_BATCH_FIELDS, row, strict=True))
    return Batch(
        **{
            **record,
            "files": tuple(json.loads(record["files"])),
            "violations": json.loads(record["violations"]),
            "inputs": tuple(json.loads(record["inputs"])),
        }
    )


# An advisory lock key of the catalog's PostgreSQL database ("wavepod" in ASCII).
_OWNER_LOCK = 0x7761766570_6F64
_TAKE_OWNERSHIP = f"SELECT pg_backend_pid(), pg_try_advisory_lock({_OWNER_LOCK})"
# pg_locks splits a bigint advisory key: classid its high 32 bits, objid its low ones.
_OWNERSHIP_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    f" AND classid = {_OWNER_LOCK >> 32} AND objid = {_OWNER_LOCK & 0xFFFFFFFF}"
    " AND objsubid = 1 AND pid = {pid}"
)

_STATEMENT_NOT_STARTED = 'Failed to execute query "BEGIN TRANSACTION'


class CatalogInUse(Exception):
    """Another ingest process holds this catalog."""


class OwnershipLost(Exception):
    """This process's hold on the catalog lapsed while a batch was landing."""


class Catalog:
    """One ingest process per catalog: exactly-once landing and orphan removal on start
    assume no one else writes the lake. A DuckDB file is locked by DuckDB itself; in
    PostgreSQL the catalog holds a session advisory lock. That session can end under a
    running process (PostgreSQL restarts, a connection drops; DuckDB reconnects without
    the lock), so each batch first makes sure the lock is still this process's (taking it
    back if no one else has), and commits only if it stayed held throughout."""

    def __init__(self, location: str | Path, password: str = "") -> None:
        """`location`: a DuckDB file, or a PostgreSQL URL without its password. Raises
        AttachError when the database cannot be reached, CatalogInUse when another
        process holds it."""
        text = str(location)
        self.location = redact(text)  # fit to log
        self._lock = threading.Lock()
        self._owner_pid: int | None = None  # the PostgreSQL session holding the lock
        if is_postgres(text):
            self._con = connect(extensions=["postgres_scanner"])
            attach(self._con, text, "wavepod_catalog", password=password)
            try:
                self._take_ownership()
            except CatalogInUse:
                self._con.close()
                raise
        else:
            Path(text).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._con = connect(text)
            except duckdb.IOException as error:
                if "lock" not in str(error):
                    raise
                raise self._busy() from error
        self._con.execute(DDL)

    def _busy(self) -> CatalogInUse:
        return CatalogInUse(
            f"another ingest process holds the catalog {self.location}: run one ingest per"
            " catalog (landing exactly once depends on it)"
        )

    def _execute(self, sql: str, parameters: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        try:
            return self._con.execute(sql, parameters)
        except duckdb.Error as error:
            # A PostgreSQL session that ended (a restart, a dropped connection) fails the
            # next statement before it starts; DuckDB reconnects for the one after.
            if _STATEMENT_NOT_STARTED not in str(error):
                raise
            return self._con.execute(sql, parameters)

    def _postgres(self, sql: str) -> duckdb.DuckDBPyConnection:
        quoted = sql.replace("'", "''")
        return self._execute(f"SELECT * FROM postgres_query('wavepod_catalog', '{quoted}')")

    def _take_ownership(self) -> None:
        [(pid, owned)] = self._postgres(_TAKE_OWNERSHIP).fetchall()
        if not owned:
            raise self._busy()
        self._owner_pid = int(pid)

    def _owned(self) -> bool:
        """Whether the session that took the lock still holds it (caller holds _lock)."""
        [(held,)] = self._postgres(_OWNERSHIP_HELD.format(pid=self._owner_pid)).fetchall()
        return bool(held)

    def ensure_owner(self) -> None:
        """Before a batch: this process holds the catalog, taking it back if its session
        was lost and no other process has taken it since. Raises CatalogInUse."""
        if self._owner_pid is None:
            return
        with self._lock:
            if not self._owned():
                self._take_ownership()

    def close(self) -> None:
        self._con.close()

    # --- schemas ------------------------------------------------------------------
    def schemas(self, dataset: str) -> list[DatasetSchema]:
        with self._lock:
            rows = self._execute(
                "SELECT definition FROM schemas WHERE dataset = ? ORDER BY major, minor", [dataset]
            ).fetchall()
        return [_SCHEMA_JSON.validate_json(r[0]) for r in rows]

    def add_schema(self, schema: DatasetSchema) -> None:
        major, minor = schema.version_tuple
        with self._lock:
            self._execute(
                "INSERT INTO schemas VALUES (?, ?, ?, ?, ?, ?)",
                [
                    schema.dataset,
                    schema.version,
                    major,
                    minor,
                    _SCHEMA_JSON.dump_json(schema).decode(),
                    _utc_now(),
                ],
            )

    def datasets(self) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._execute("SELECT DISTINCT dataset FROM schemas ORDER BY 1").fetchall()
            ]

    # --- sources ------------------------------------------------------------------
    def add_source(self, source_id: str, dataset: str, spec: dict[str, object]) -> None:
        with self._lock:
            self._execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)",
                [source_id, dataset, json.dumps(spec), _utc_now()],
            )

    def source(self, source_id: str) -> dict[str, object] | None:
        with self._lock:
            row = self._execute(
                "SELECT spec FROM sources WHERE source_id = ?", [source_id]
            ).fetchone()
        return json.loads(row[0]) if row else None

    # --- batches ------------------------------------------------------------------
    def record(self, batch: Batch) -> None:
        """Commits a batch (or records a failed one): the single write that publishes it.
        Raises OwnershipLost, committing nothing, when the catalog's lock lapsed since
        `ensure_owner` (another process may have landed the same rows meanwhile)."""
        with self._lock:
            if batch.status == "committed" and self._owner_pid is not None and not self._owned():
                raise OwnershipLost(
                    f"the catalog's PostgreSQL session ended while batch {batch.batch_id} of"
                    f" {batch.dataset} was landing (did PostgreSQL restart?); it was not"
                    " committed: run it again"
                )
            self._execute(
                f"INSERT OR REPLACE INTO batches VALUES ({', '.join('?' * 18)})",
                [
                    batch.batch_id,
                    batch.dataset,
                    batch.source_id,
                    batch.connector,
                    batch.content_hash,
                    batch.schema_version,
                    batch.status,
                    batch.rows_read,
                    batch.rows_landed,
                    batch.rows_quarantined,
                    batch.rows_duplicate,
                    json.dumps(list(batch.files)),
                    batch.quarantine_file,
                    json.dumps(batch.violations),
                    batch.error,
                    batch.started_at,
                    batch.finished_at,
                    json.dumps(list(batch.inputs)),
                ],
            )

    def batches(
        self,
        dataset: str | None = None,
        status: str | None = None,
        ids: Collection[str] | None = None,
    ) -> list[Batch]:
        query = (
            "SELECT * FROM batches WHERE (? IS NULL OR dataset = ?)"
            " AND (? IS NULL OR status = ?) AND (? IS NULL OR list_contains(?, batch_id))"
            " ORDER BY started_at"
        )
        chosen = None if ids is None else list(ids)
        with self._lock:
            rows = self._execute(
                query, [dataset, dataset, status, status, chosen, chosen]
            ).fetchall()
        return [_batch_from_row(r) for r in rows]

    def lineage_page(
        self, dataset: str, after: tuple[datetime, str] | None, limit: int
    ) -> tuple[list[Batch], int]:
        """Up to `limit` of a dataset's batches in (started_at, batch_id) order, those
        after `after` (the last one of the previous page), and how many it has in all.
        Keyed on the last row seen, not an offset: batches landing meanwhile shift no page."""
        query = (
            "SELECT * FROM batches WHERE dataset = ?"
            " AND (? IS NULL OR started_at > ? OR (started_at = ? AND batch_id > ?))"
            " ORDER BY started_at, batch_id LIMIT ?"
        )
        at, batch_id = (_naive(after[0]), after[1]) if after else (None, None)
        with self._lock:
            rows = self._execute(query, [dataset, at, at, at, batch_id, limit]).fetchall()
            [(total,)] = self._execute(
                "SELECT count(*) FROM batches WHERE dataset = ?", [dataset]
            ).fetchall()
        return [_batch_from_row(r) for r in rows], int(total)

    def committed_ids(self, dataset: str) -> set[str]:
        """The ids of a dataset's committed batches: much cheaper than `batches` when a
        stream has committed thousands."""
        with self._lock:
            rows = self._execute(
                "SELECT batch_id FROM batches WHERE dataset = ? AND status = 'committed'",
                [dataset],
            ).fetchall()
        return {r[0] for r in rows}

    def committed_batch(self, dataset: str, content_hash: str) -> Batch | None:
        with self._lock:
            row = self._execute(
                "SELECT * FROM batches WHERE dataset = ? AND content_hash = ?"
                " AND status = 'committed'",
                [dataset, content_hash],
            ).fetchone()
        return _batch_from_row(row) if row else None

    def committed_files(self, dataset: str | None = None) -> list[str]:
        files: list[str] = []
        for batch in self.batches(dataset, "committed"):
            files += batch.files
            if batch.quarantine_file:
                files.append(batch.quarantine_file)
        return files
