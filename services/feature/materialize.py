"""Offline materialization: a feature set's rows written by event day, incrementally.

Layout under the store root: `<set>/<version>/offline/date=YYYY-MM-DD/part.parquet`,
`stats.parquet` (mergeable summaries per day, stats.py) and `manifest.json`.

Incremental: every event day has a fingerprint that chains the definition, the files of
every day up to it and the dimension datasets, because a feature of day D reads history
before D. A day whose fingerprint matches the manifest is skipped; a changed or late file
makes its day and every later day dirty. Resumable: dirty days are computed in one lazy
pass, then written in chunks; each chunk commits by replacing the manifest last, so a
crash leaves finished chunks committed and the rest dirty for the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from feature.compute import feature_frame
from feature.definition import FeatureSet
from feature.lake import Lake, LakeFile, history_cutoff, scan
from feature.online.store import OnlineRow, OnlineStore
from feature.stats import PARTITION, SCHEMA, choose_edges, summarize
from wavepod.runtime.status import FailedPrecondition, FieldViolation, InvalidArgument

Progress = Callable[[str, int, int], None]
CHUNK_DAYS = 64


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    definition_hash: str
    edges: Mapping[str, Sequence[float]] = field(default_factory=dict)
    days: Mapping[str, str] = field(default_factory=dict)  # day -> fingerprint

    @property
    def fingerprint(self) -> str:
        return _sha(self.definition_hash, json.dumps(dict(self.days), sort_keys=True))


@dataclass(frozen=True)
class MaterializeResult:
    uri: str
    content_hash: str
    entities: int
    rows: int
    days_written: int
    days_skipped: int
    online_written: int


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


class OfflineStore:
    """The materialized rows of one feature set version on local disk."""

    def __init__(self, root: Path, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        self.folder = Path(root) / feature_set.name / feature_set.version
        self.offline = self.folder / "offline"
        self._manifest = self.folder / "manifest.json"
        self._stats = self.folder / "stats.parquet"

    def manifest(self) -> Manifest:
        empty = Manifest(self.feature_set.definition_hash)
        if not self._manifest.exists():
            return empty
        raw = json.loads(self._manifest.read_text())
        if raw["definition_hash"] != self.feature_set.definition_hash:
            return empty  # written by another definition: everything is dirty
        return Manifest(raw["definition_hash"], raw["edges"], raw["days"])

    def partition(self, day: str) -> Path:
        return self.offline / f"date={day}" / "part.parquet"

    def scan(self) -> pl.LazyFrame:
        days = sorted(self.manifest().days)
        if not days:
            raise FailedPrecondition(f"{self.feature_set.ref} is not materialized yet")
        return pl.scan_parquet([self.partition(d) for d in days], hive_partitioning=False)

    def stats(self) -> pl.DataFrame:
        """Summaries of the committed days."""
        if not self._stats.exists():
            return pl.DataFrame(schema=SCHEMA)
        days = set(self.manifest().days)
        return pl.read_parquet(self._stats).filter(pl.col(PARTITION).is_in(days))

    def commit(self, manifest: Manifest, summaries: pl.DataFrame) -> None:
        """Replaces stats, then the manifest: the manifest is the commit point."""
        self.folder.mkdir(parents=True, exist_ok=True)
        written = set(summaries[PARTITION].unique()) if summaries.height else set()
        kept = self.stats().filter(~pl.col(PARTITION).is_in(written))
        _write_atomic(self._stats, pl.concat([kept, summaries]).write_parquet)
        _write_atomic(
            self._manifest,
            lambda p: p.write_text(
                json.dumps(
                    {
                        "definition_hash": manifest.definition_hash,
                        "edges": {k: list(v) for k, v in manifest.edges.items()},
                        "days": dict(sorted(manifest.days.items())),
                    }
                )
            ),
        )


def _fingerprints(
    feature_set: FeatureSet,
    events: Sequence[LakeFile],
    dimensions: Mapping[str, Sequence[LakeFile]],
    history_until: datetime | None,
) -> dict[str, str]:
    """Chained fingerprint per event day (undated files and dimensions feed every day)."""
    base = _sha(
        feature_set.definition_hash,
        history_until,
        sorted((name, f.url) for name, files in dimensions.items() for f in files),
        sorted(f.url for f in events if f.day is None),
    )
    by_day: dict[date, list[str]] = {}
    for f in events:
        if f.day is not None:
            by_day.setdefault(f.day, []).append(f.url)
    chained, found = base, {}
    for day in sorted(by_day):
        chained = _sha(chained, day, sorted(by_day[day]))
        found[day.isoformat()] = chained
    return found


def materialize(
    feature_set: FeatureSet,
    lake: Lake,
    offline: OfflineStore,
    online: OnlineStore | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    history_until: datetime | None = None,
    progress: Progress = _no_progress,
    storage_options: dict[str, str] | None = None,
) -> MaterializeResult:
    """(Re)computes the dirty event days in [start, end) and writes them; see the module."""
    fs = feature_set
    progress("plan", 0, 1)
    events = lake.files(fs.event_source)
    dimensions = {j.dataset: lake.files(j.dataset) for j in fs.joins}
    if any(f.day is None for f in events):
        raise FailedPrecondition(
            f"{fs.event_source} is not partitioned by day (date=YYYY-MM-DD): "
            "incremental materialization needs the lake's day partitions"
        )
    cutoff = history_until or history_cutoff(events)
    fingerprints = _fingerprints(fs, events, dimensions, cutoff)
    manifest = offline.manifest()
    in_range = [
        d
        for d in fingerprints
        if (start is None or d >= start.isoformat()) and (end is None or d < end.isoformat())
    ]
    dirty = [d for d in in_range if manifest.days.get(d) != fingerprints[d]]
    if not dirty:
        progress("plan", 1, 1)
        return _result(offline, manifest, 0, len(in_range), 0)

    # Validate against the columns the definition will see, before reading any rows.
    history = [f for f in events if f.day is not None and f.day.isoformat() <= dirty[-1]]
    sources = scan(history, cutoff, storage_options)
    dims = {name: scan(files, None, storage_options) for name, files in dimensions.items()}
    columns = dict(sources.collect_schema())
    for join in fs.joins:
        dim_columns = dims[join.dataset].collect_schema()
        missing = [c for c in (join.on, *join.columns) if c not in dim_columns]
        if missing:
            raise InvalidArgument(
                FieldViolation(
                    f"feature_set.joins.{join.dataset}",
                    f"needs columns {missing} that {join.dataset!r} does not have",
                )
            )
        columns.update({c: dim_columns[c] for c in join.columns})
    days = [date.fromisoformat(d) for d in fingerprints]
    span = days[-1] - days[0]
    if problems := fs.violations(columns, span):
        raise InvalidArgument(problems)
    progress("plan", 1, 1)

    progress("compute", 0, len(dirty))
    day_text = pl.col(fs.event_time).cast(pl.Date).cast(pl.String)
    rows = (
        feature_frame(fs, sources, dims)
        .filter(day_text.is_in(dirty))
        .with_columns(day_text.alias(PARTITION))
        .collect()
    )
    progress("compute", len(dirty), len(dirty))

    edges = manifest.edges or choose_edges(rows, fs.features)
    summaries = summarize(rows, fs.features, edges, pl.col(PARTITION))
    committed = dict(manifest.days)
    for stale in set(committed) - set(fingerprints):
        committed.pop(stale)  # the lake no longer has that day
    written = 0
    offline.offline.mkdir(parents=True, exist_ok=True)
    for first in range(0, len(dirty), CHUNK_DAYS):
        chunk = dirty[first : first + CHUNK_DAYS]
        part = rows.filter(pl.col(PARTITION).is_in(chunk))
        _write_days(offline, part, chunk)
        committed.update({d: fingerprints[d] for d in chunk})
        offline.commit(
            Manifest(fs.definition_hash, edges, committed),
            summaries.filter(pl.col(PARTITION).is_in(chunk)),
        )
        written += len(chunk)
        progress("write", written, len(dirty))

    online_written = 0
    if online is not None:
        progress("online", 0, 1)
        online_written = write_online(fs, rows, online)
        progress("online", 1, 1)
    return _result(
        offline, offline.manifest(), len(dirty), len(in_range) - len(dirty), online_written
    )


def _write_days(offline: OfflineStore, rows: pl.DataFrame, days: Sequence[str]) -> None:
    """Writes each day's rows to a staging folder, then renames them into place."""
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=offline.folder) as staging:
        rows.write_parquet(staging, partition_by=PARTITION, compression="zstd")
        for day in days:
            produced = sorted(Path(staging).glob(f"{PARTITION}={day}/*.parquet"))
            target = offline.partition(day)
            target.parent.mkdir(parents=True, exist_ok=True)
            if len(produced) == 1:
                os.replace(produced[0], target)
            elif produced:  # split into several files: rewrite as one
                pl.concat([pl.read_parquet(p) for p in produced]).write_parquet(target)
            else:  # the day has no rows any more
                shutil.rmtree(target.parent)


def write_online(feature_set: FeatureSet, rows: pl.DataFrame, online: OnlineStore) -> int:
    """The newest row per entity among `rows` to the online store (newest event wins)."""
    fs = feature_set
    order = [fs.entity_key, fs.event_time, *([fs.row_id] if fs.row_id else [])]
    latest = rows.sort(order).group_by(fs.entity_key, maintain_order=True).last()
    times = latest[fs.event_time].cast(pl.Datetime("us")).to_list()
    entities = latest[fs.entity_key].cast(pl.String).to_list()
    names = fs.feature_names
    values = latest.select(names).rows()
    batch = [
        OnlineRow(entity, dict(zip(names, row, strict=True)), moment)
        for entity, row, moment in zip(entities, values, times, strict=True)
    ]
    return online.write(fs.ref, batch, fs.online_ttl)


def _result(
    offline: OfflineStore, manifest: Manifest, written: int, skipped: int, online_written: int
) -> MaterializeResult:
    fs = offline.feature_set
    counts = (
        offline.scan().select(pl.len().alias("rows"), pl.col(fs.entity_key).n_unique()).collect()
        if manifest.days
        else pl.DataFrame({"rows": [0], fs.entity_key: [0]})
    )
    return MaterializeResult(
        uri=str(offline.offline),
        content_hash=manifest.fingerprint,
        entities=int(counts[fs.entity_key][0]),
        rows=int(counts["rows"][0]),
        days_written=written,
        days_skipped=skipped,
        online_written=online_written,
    )
