"""Offline materialization: a feature set's rows written by event month, incrementally.

Layout under the store root: `<set>/<version>/offline/month=YYYY-MM/part.parquet`,
`stats.parquet` (mergeable summaries per month, stats.py) and `manifest.json`. Months,
not the lake's days: a few large files read and write much faster than hundreds of small
ones, and the work a late day causes is the same (see below).

Incremental: every month has a fingerprint that chains the definition, the lake files of
every day up to the month's end and the dimension datasets, because a feature at time t
reads history before t. A month whose fingerprint matches the manifest is skipped; a
changed or late file makes its month and every later one dirty. Resumable: dirty months
are computed in one lazy pass, then written in chunks; each chunk commits by replacing the
manifest last, so a crash leaves finished chunks committed and the rest dirty.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import polars as pl

from feature.compute import feature_frame
from feature.definition import FeatureSet
from feature.online.store import OnlineRow, OnlineStore
from feature.stats import PARTITION, SCHEMA, choose_edges, summarize
from wavepod.lake import Lake, LakeFile, arrived_late, history_cutoff, reading, scan
from wavepod.runtime.progress import Progress, no_progress
from wavepod.runtime.status import FailedPrecondition, FieldViolation, InvalidArgument

CHUNK_PARTITIONS = 6


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    definition_hash: str
    edges: Mapping[str, Sequence[float]] = field(default_factory=dict)
    partitions: Mapping[str, str] = field(default_factory=dict)  # YYYY-MM -> fingerprint

    @property
    def fingerprint(self) -> str:
        return _sha(self.definition_hash, json.dumps(dict(self.partitions), sort_keys=True))


@dataclass(frozen=True)
class MaterializeResult:
    uri: str
    content_hash: str
    entities: int
    rows: int
    partitions_written: int
    partitions_skipped: int
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
        return Manifest(raw["definition_hash"], raw["edges"], raw["partitions"])

    def partition(self, month: str) -> Path:
        return self.offline / f"month={month}" / "part.parquet"

    def scan(self) -> pl.LazyFrame:
        months = sorted(self.manifest().partitions)
        if not months:
            raise FailedPrecondition(f"{self.feature_set.ref} is not materialized yet")
        return pl.scan_parquet([self.partition(m) for m in months], hive_partitioning=False)

    def stats(self) -> pl.DataFrame:
        """Summaries of the committed partitions."""
        if not self._stats.exists():
            return pl.DataFrame(schema=SCHEMA)
        months = set(self.manifest().partitions)
        return pl.read_parquet(self._stats).filter(pl.col(PARTITION).is_in(months))

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
                        "partitions": dict(sorted(manifest.partitions.items())),
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
    """Chained fingerprint per event month (dimensions and undated files feed every one)."""
    base = _sha(
        feature_set.definition_hash,
        history_until,
        sorted((name, f.url) for name, files in dimensions.items() for f in files),
        sorted(f.url for f in events if f.day is None),
    )
    by_month: dict[str, list[str]] = {}
    for f in events:
        if f.day is not None:
            by_month.setdefault(_month(f.day), []).append(f.url)
    chained, found = base, {}
    for month in sorted(by_month):
        chained = _sha(chained, month, sorted(by_month[month]))
        found[month] = chained
    return found


def _month(day: date) -> str:
    return f"{day:%Y-%m}"


def _key(month: str) -> int:
    """ "2024-03" -> 202403, the month as the frame computes it."""
    return int(month.replace("-", ""))


def materialize(
    feature_set: FeatureSet,
    lake: Lake,
    offline: OfflineStore,
    online: OnlineStore | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    history_until: datetime | None = None,
    progress: Progress = no_progress,
) -> MaterializeResult:
    """(Re)computes the dirty months overlapping [start, end) and writes them."""
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
    last = _month(end - timedelta(days=1)) if end else None
    in_range = [
        m
        for m in fingerprints
        if (start is None or m >= _month(start)) and (last is None or m <= last)
    ]
    dirty = [m for m in in_range if manifest.partitions.get(m) != fingerprints[m]]
    if not dirty:
        progress("plan", 1, 1)
        return _result(offline, manifest, 0, len(in_range), 0)

    # Validate against the columns the definition will see, before reading any rows.
    history = [f for f in events if f.day is not None and _month(f.day) <= dirty[-1]]
    sources = scan(history, cutoff, lake.storage_options)
    dims = {name: scan(files, None, lake.storage_options) for name, files in dimensions.items()}
    with reading(f"the sources of {fs.ref}"):
        columns = dict(sources.collect_schema())
        dim_schemas = {name: dim.collect_schema() for name, dim in dims.items()}
    for join in fs.joins:
        dim_columns = dim_schemas[join.dataset]
        missing = [c for c in (join.on, *join.columns) if c not in dim_columns]
        if missing:
            raise InvalidArgument(
                FieldViolation(
                    f"feature_set.joins.{join.dataset}",
                    f"needs columns {missing} that {join.dataset!r} does not have",
                )
            )
        columns.update({c: dim_columns[c] for c in join.columns})
    days = sorted(f.day for f in events if f.day is not None)
    span = days[-1] - days[0]
    if problems := fs.violations(columns, span):
        raise InvalidArgument(problems)
    progress("plan", 1, 1)

    progress("compute", 0, len(dirty))
    key = pl.col(fs.event_time).dt.year() * 100 + pl.col(fs.event_time).dt.month()
    frame = feature_frame(
        fs, sources, dims, late_rows=any(arrived_late(f, cutoff) for f in history)
    )
    if len(dirty) < len(fingerprints):
        frame = frame.filter(key.is_in([_key(m) for m in dirty]))
    with reading(f"the sources of {fs.ref}"):
        rows = frame.collect()  # in event-time order: each month is one slice
    progress("compute", len(dirty), len(dirty))

    edges = manifest.edges or choose_edges(rows, fs.features)
    labels = {_key(m): m for m in dirty}
    runs = rows.select(key.alias("month")).to_series().rle().struct.unnest()
    slices, offset = {}, 0
    for length, month in runs.iter_rows():
        slices[labels[month]] = rows.slice(offset, length)
        offset += length
    committed = {m: f for m, f in manifest.partitions.items() if m in fingerprints}
    chunks = [dirty[i : i + CHUNK_PARTITIONS] for i in range(0, len(dirty), CHUNK_PARTITIONS)]
    written: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Statistics are computed while the files are written; a chunk commits once both
        # its files and the statistics exist, so a crash keeps every committed chunk.
        summarizing = pool.submit(summarize, rows, fs.features, edges, key)
        pending: list[list[str]] = []

        def commit_ready(wait: bool) -> None:
            if not pending or not (wait or summarizing.done()):
                return
            summaries = summarizing.result().with_columns(
                pl.col(PARTITION).cast(pl.Int64).replace_strict(labels, return_dtype=pl.String)
            )
            while pending:
                chunk = pending.pop(0)
                committed.update({m: fingerprints[m] for m in chunk})
                offline.commit(
                    Manifest(fs.definition_hash, edges, committed),
                    summaries.filter(pl.col(PARTITION).is_in(chunk)),
                )
                written.extend(chunk)
                progress("write", len(written), len(dirty))

        for chunk in chunks:
            _write_partitions(offline, {m: slices.get(m) for m in chunk})
            pending.append(chunk)
            commit_ready(wait=False)
        commit_ready(wait=True)

    online_written = 0
    if online is not None:
        progress("online", 0, 1)
        online_written = write_online(fs, rows, online)
        progress("online", 1, 1)
    everything = len(written) == len(fingerprints)  # the counts are those of `rows`
    return _result(
        offline,
        offline.manifest(),
        len(written),
        len(in_range) - len(dirty),
        online_written,
        rows if everything else None,
    )


def _write_partitions(offline: OfflineStore, months: Mapping[str, pl.DataFrame | None]) -> None:
    """Each month's rows to a temporary file renamed into place (none: remove the month)."""
    for month, part in months.items():
        target = offline.partition(month)
        if part is None or part.height == 0:
            shutil.rmtree(target.parent, ignore_errors=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, partial(part.write_parquet, compression="lz4"))


def write_online(feature_set: FeatureSet, rows: pl.DataFrame, online: OnlineStore) -> int:
    """The newest row per entity among `rows` (in event-time order, as `feature_frame`
    gives them) to the online store, where the newest event wins too."""
    fs = feature_set
    latest = rows.group_by(fs.entity_key).last()
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
    offline: OfflineStore,
    manifest: Manifest,
    written: int,
    skipped: int,
    online_written: int,
    all_rows: pl.DataFrame | None = None,
) -> MaterializeResult:
    fs = offline.feature_set
    count = [pl.len().alias("rows"), pl.col(fs.entity_key).n_unique()]
    if all_rows is not None:
        counts = all_rows.select(count)
    elif manifest.partitions:
        counts = offline.scan().select(count).collect()
    else:
        counts = pl.DataFrame({"rows": [0], fs.entity_key: [0]})
    return MaterializeResult(
        uri=str(offline.offline),
        content_hash=manifest.fingerprint,
        entities=int(counts[fs.entity_key][0]),
        rows=int(counts["rows"][0]),
        partitions_written=written,
        partitions_skipped=skipped,
        online_written=online_written,
    )
