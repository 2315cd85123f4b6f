"""The ingest data plane, independent of gRPC: register schemas and sources, run a
source into the lake, answer lineage. The servicer (servicer.py) only translates."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ingest import paging
from ingest.catalog import Batch, Catalog, CatalogInUse, OwnershipLost
from ingest.committed import CommittedColumns
from ingest.lake import REPORTS, Lake
from ingest.pii import pseudonymize
from ingest.profiling import Profile, profile_frame, render_html
from ingest.quality import validate
from ingest.schema import DatasetSchema, RuleKind, compatibility_problems
from ingest.sources import CONNECTORS, SourceBatch, SourceKind, SourceSpec
from ingest.storage import LocalStorage, open_storage
from wavepod.runtime.progress import Progress, no_progress
from wavepod.runtime.status import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)

log = logging.getLogger(__name__)

# Progress phases: read, validate, write, commit.


@dataclass(frozen=True)
class LineagePage:
    batches: tuple[Batch, ...]
    next_token: str  # "" on the last page
    total: int  # the dataset's batches in all


class IngestEngine:
    def __init__(
        self,
        lake_root: str | Path,
        pii_key: bytes | None = None,
        before_commit: Callable[[], None] | None = None,
        catalog: str | Path | None = None,
        s3_endpoint_url: str | None = None,
        catalog_password: str = "",
        kept_values_max_bytes: int = 1 << 30,
    ) -> None:
        storage = open_storage(lake_root, s3_endpoint_url)
        self.lake = Lake(storage)
        self._pii_key = pii_key
        if not catalog:  # unset or empty: the embedded catalog
            if not isinstance(storage, LocalStorage):
                raise ValueError("an object-store lake needs a catalog (a file or PostgreSQL)")
            catalog = storage.root / "_catalog.duckdb"
        self.catalog = Catalog(catalog, catalog_password)
        # Landed keys and referenced values, read once and then only what each batch adds.
        self._committed = CommittedColumns(self.catalog, self._read_files, kept_values_max_bytes)
        # Test seam: runs after the files are written and before the catalog commit.
        self._before_commit = before_commit or (lambda: None)
        self._dataset_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        removed = self.lake.remove_orphans(set(self.catalog.committed_files()))
        if removed:
            log.warning("removed files of uncommitted batches", extra={"files": len(removed)})

    def close(self) -> None:
        self.catalog.close()

    # --- schemas ----------------------------------------------------------------------
    def register_schema(self, schema: DatasetSchema) -> str:
        if problems := schema.violations():
            raise InvalidArgument(problems)
        versions = self.catalog.schemas(schema.dataset)
        same = next((s for s in versions if s.version == schema.version), None)
        if same is not None:
            if same == schema:
                return schema.version  # re-registering the same definition is a no-op
            raise AlreadyExists(
                f"{schema.dataset} {schema.version} is registered with another definition"
            )
        if versions and (problems := compatibility_problems(versions[-1], schema)):
            raise InvalidArgument(problems)
        self.catalog.add_schema(schema)
        return schema.version

    def schema(self, dataset: str, version: str = "") -> DatasetSchema:
        versions = self.catalog.schemas(dataset)
        if not versions:
            raise NotFound(f"dataset {dataset!r} has no registered schema")
        if not version:
            return versions[-1]
        for candidate in versions:
            if candidate.version == version:
                return candidate
        raise NotFound(f"dataset {dataset!r} has no schema version {version!r}")

    # --- sources ----------------------------------------------------------------------
    def register_source(self, spec: SourceSpec) -> str:
        connector = CONNECTORS.get(spec.kind)
        if connector is None:
            raise InvalidArgument(
                FieldViolation(
                    "source.kind", f"unsupported kind {spec.kind!r}; one of {sorted(CONNECTORS)}"
                )
            )
        if problems := connector.check(spec):
            raise InvalidArgument(problems)
        self.schema(spec.dataset)  # NOT_FOUND unless the dataset has a schema
        definition = {**asdict(spec), "kind": spec.kind.value}
        source_id = (
            f"{spec.dataset}-{spec.kind.value}-"
            + hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:12]
        )
        self.catalog.add_source(source_id, spec.dataset, definition)
        return source_id

    def source(self, source_id: str) -> SourceSpec:
        spec = self.catalog.source(source_id)
        if spec is None:
            raise NotFound(f"source {source_id!r} is not registered")
        return SourceSpec(
            dataset=str(spec["dataset"]),
            kind=SourceKind(str(spec["kind"])),
            location=str(spec["location"]),
            query=str(spec.get("query", "")),
            secret_ref=str(spec.get("secret_ref", "")),
            options=tuple(tuple(pair) for pair in spec.get("options", ())),  # type: ignore[attr-defined]
        )

    # --- ingest -----------------------------------------------------------------------
    def _lock(self, dataset: str) -> threading.Lock:
        with self._locks_guard:
            return self._dataset_locks.setdefault(dataset, threading.Lock())

    def run_ingest(self, source_id: str, progress: Progress = no_progress) -> tuple[Batch, bool]:
        """Lands one batch from the source; returns it and whether it was a duplicate."""
        spec = self.source(source_id)
        schema = self.schema(spec.dataset)  # NOT_FOUND before reading anything
        progress("read", 0, 1)
        types = {c.name: c.type.polars for c in schema.columns if not c.pii}
        source = CONNECTORS[spec.kind].read(spec, types)
        return self.land(spec.dataset, source_id, spec.kind.value, source, progress)

    def land(
        self,
        dataset: str,
        source_id: str,
        connector: str,
        source: SourceBatch,
        progress: Progress = no_progress,
    ) -> tuple[Batch, bool]:
        """Validates and lands rows read by any connector (or a stream) exactly once."""
        schema = self.schema(dataset)
        started = datetime.now(UTC)
        clock = time.perf_counter()
        rows = source.frame.height
        with self._lock(dataset):
            try:
                self.catalog.ensure_owner()
            except CatalogInUse as error:
                raise FailedPrecondition(str(error)) from None
            previous = self.catalog.committed_batch(dataset, source.content_hash)
            if previous is not None:
                progress("commit", rows, rows)
                return previous, True
            progress("validate", 0, rows)
            checked = validate(
                pseudonymize(source.frame, schema, self._pii_key),
                schema,
                references=self._references(schema),
                landed_keys=self._landed_keys(schema),
                now=started,
            )
            batch_id = hashlib.sha256(f"{dataset}:{source.content_hash}".encode()).hexdigest()[:20]
            bad = checked.quarantined.height
            # This attempt as the catalog will record it; failed until committed.
            attempt = Batch(
                batch_id=batch_id,
                dataset=dataset,
                source_id=source_id,
                connector=connector,
                content_hash=source.content_hash,
                schema_version=schema.version,
                status="failed",
                rows_read=rows,
                rows_landed=0,
                rows_quarantined=bad,
                rows_duplicate=0,
                files=(),
                quarantine_file=None,
                violations=checked.violations_by_rule,
                error=None,
                started_at=started,
                finished_at=started,
                inputs=source.inputs,
            )
            if rows and bad / rows > schema.max_bad_row_ratio:
                top = sorted(checked.violations_by_rule.items(), key=lambda kv: -kv[1])[:3]
                failure = (
                    f"{bad} of {rows} rows ({bad / rows:.1%}) broke quality rules, above "
                    f"max_bad_row_ratio {schema.max_bad_row_ratio:.1%}; most broken: "
                    + ", ".join(f"{rule} ({n})" for rule, n in top)
                )
                self.catalog.record(replace(attempt, error=failure, finished_at=datetime.now(UTC)))
                raise FailedPrecondition(failure)
            progress("write", 0, checked.valid.height)
            files = self.lake.write_batch(
                dataset, batch_id, checked.valid, schema.event_time_column
            )
            quarantine = self.lake.write_quarantine(dataset, batch_id, checked.quarantined)
            progress("write", checked.valid.height, checked.valid.height)
            self._before_commit()
            batch = replace(
                attempt,
                status="committed",
                rows_landed=checked.valid.height,
                rows_duplicate=checked.duplicates,
                files=tuple(files),
                quarantine_file=quarantine,
                finished_at=datetime.now(UTC),
            )
            try:
                self.catalog.record(batch)
            except OwnershipLost as error:
                raise Unavailable(str(error)) from None
            progress("commit", rows, rows)
        log.info(
            "landed batch",
            extra={
                "dataset": dataset,
                "batch_id": batch_id,
                "rows_landed": batch.rows_landed,
                "rows_quarantined": bad,
                "seconds": round(time.perf_counter() - clock, 3),
            },
        )
        return batch, False

    def _references(self, schema: DatasetSchema) -> dict[tuple[str, str], pl.Series]:
        found = {}
        for rule in schema.rules:
            if rule.kind == RuleKind.REFERENCES:
                dataset, column = rule.param("dataset") or "", rule.param("column") or ""
                frame = self._committed.read(dataset, [column])
                found[(dataset, column)] = (
                    frame[column] if column in frame.columns else pl.Series(dtype=pl.String)
                )
        return found

    def _landed_keys(self, schema: DatasetSchema) -> pl.DataFrame | None:
        if not schema.primary_key:
            return None
        return self._committed.read(schema.dataset, schema.primary_key)

    # --- reading and lineage --------------------------------------------------------------
    def read(self, dataset: str, columns: list[str] | None = None) -> pl.DataFrame:
        """The committed rows of a dataset (only files the catalog lists)."""
        files = [f for b in self.catalog.batches(dataset, "committed") for f in b.files]
        return self._read_files(files, columns)

    def quarantine(self, dataset: str) -> pl.DataFrame:
        batches = self.catalog.batches(dataset, "committed")
        return self._read_files([b.quarantine_file for b in batches if b.quarantine_file])

    def profile(self, dataset: str, batch_id: str = "") -> tuple[Profile, str]:
        """Profiles the dataset, or one batch against the batch before it; writes the
        HTML report under `_reports/` in the lake and returns where it is."""
        self.schema(dataset)
        committed = self.catalog.batches(dataset, "committed")
        if not batch_id:
            frame, previous, errors, read = self.read(dataset), None, {}, None
        else:
            index = next((i for i, b in enumerate(committed) if b.batch_id == batch_id), None)
            if index is None:
                raise NotFound(f"{dataset} has no committed batch {batch_id!r}")
            batch = committed[index]
            frame = self._read_files(batch.files)
            previous = self._read_files(committed[index - 1].files) if index else None
            errors, read = batch.violations, batch.rows_read
        result = profile_frame(dataset, batch_id or "dataset", frame, previous, errors, read)
        key = f"{REPORTS}/{dataset}/profile-{batch_id or 'dataset'}.html"
        return result, self.lake.write_text(render_html(result, frame), key)

    def _read_files(self, files: Sequence[str], columns: list[str] | None = None) -> pl.DataFrame:
        scan = self.lake.scan(files)
        if scan is None:
            return pl.DataFrame()
        return (scan.select(columns) if columns else scan).collect()

    def lineage(self, dataset: str) -> list[Batch]:
        self.schema(dataset)
        return self.catalog.batches(dataset)

    def lineage_page(self, dataset: str, size: int = 0, token: str = "") -> LineagePage:
        """One page of `lineage`; its token says where the next starts ("" when none)."""
        self.schema(dataset)
        limit = paging.page_size(size)
        # One row more than the page says whether another page follows.
        batches, total = self.catalog.lineage_page(
            dataset, paging.decode(dataset, token), limit + 1
        )
        page = batches[:limit]
        after = (page[-1].started_at, page[-1].batch_id) if len(batches) > limit else None
        return LineagePage(tuple(page), paging.encode(dataset, after) if after else "", total)
