"""The Parquet lake: `<root>/<dataset>/date=YYYY-MM-DD/part-<batch>.parquet`.

Files are written under a temporary name and renamed into place, so a reader never
sees half a file; a batch becomes visible only when the catalog commits its file list
(catalog.py), so a crash between writing and committing leaves orphans that no reader
lists and that `remove_orphans` deletes (or the re-run overwrites: names are derived
from the batch id, which is derived from the content).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import polars as pl

QUARANTINE = "_quarantine"
STAGING = ".staging"


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _write(self, frame: pl.DataFrame, relative: str) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
        return relative

    def write_batch(
        self, dataset: str, batch_id: str, frame: pl.DataFrame, event_time_column: str
    ) -> list[str]:
        """Writes `frame` partitioned by the date of its event time; returns relative paths.

        A date-typed event time partitions in one parallel polars write into a staging
        directory (the partition column is a real column, so files carry nothing extra);
        timestamps are split by day first. Each file is then renamed into place.
        """
        if frame.height == 0:
            return []
        if not event_time_column:
            return [self._write(frame, f"{dataset}/part-{batch_id}.parquet")]
        if frame.schema[event_time_column] != pl.Date:
            return self._write_by_day(dataset, batch_id, frame, event_time_column)
        staging = self.root / STAGING / batch_id
        shutil.rmtree(staging, ignore_errors=True)
        frame.write_parquet(staging, partition_by=event_time_column, compression="zstd")
        written = []
        for part in sorted(staging.glob(f"{event_time_column}=*/*.parquet")):
            day = part.parent.name.split("=", 1)[1]
            suffix = "" if part.stem.strip("0") == "" else f"-{part.stem}"
            relative = f"{dataset}/date={day}/part-{batch_id}{suffix}.parquet"
            (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, self.root / relative)
            written.append(relative)
        shutil.rmtree(staging, ignore_errors=True)
        return written

    def _write_by_day(
        self, dataset: str, batch_id: str, frame: pl.DataFrame, event_time_column: str
    ) -> list[str]:
        keyed = frame.with_columns(
            pl.col(event_time_column).dt.date().dt.strftime("%Y-%m-%d").alias("__date")
        )
        return sorted(
            self._write(part.drop("__date"), f"{dataset}/date={day}/part-{batch_id}.parquet")
            for (day,), part in keyed.partition_by("__date", as_dict=True).items()
        )

    def write_quarantine(self, dataset: str, batch_id: str, frame: pl.DataFrame) -> str | None:
        if frame.height == 0:
            return None
        return self._write(frame, f"{QUARANTINE}/{dataset}/part-{batch_id}.parquet")

    def scan(self, files: Iterable[str]) -> pl.LazyFrame | None:
        paths = [str(self.root / f) for f in files]
        return pl.scan_parquet(paths) if paths else None

    def remove_orphans(self, committed: set[str]) -> list[str]:
        """Deletes data files no committed batch lists (left by a crash); returns them."""
        removed = []
        for path in self.root.rglob("*.parquet"):
            relative = path.relative_to(self.root).as_posix()
            if relative not in committed:
                path.unlink()
                removed.append(relative)
        for tmp in self.root.rglob(".*.tmp"):
            tmp.unlink()
        shutil.rmtree(self.root / STAGING, ignore_errors=True)
        return removed
