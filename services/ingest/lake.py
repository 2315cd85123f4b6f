"""The Parquet lake: `<root>/<dataset>/date=YYYY-MM-DD/part-<batch>.parquet`.

Files are written locally and published atomically (storage.py), so a reader never
sees half a file; a batch becomes visible only when the catalog commits its file list
(catalog.py), so a crash between writing and committing leaves orphans that no reader
lists and that `remove_orphans` deletes (or the re-run overwrites: names derive from
the batch id, which derives from the content).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.storage import STAGING, Storage

QUARANTINE = "_quarantine"
REPORTS = "_reports"


class Lake:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.uri = storage.uri

    def _write(self, frame: pl.DataFrame, key: str) -> str:
        with self.storage.staging() as tmp:
            local = tmp / "part.parquet"
            frame.write_parquet(local, compression="zstd", statistics=True)
            self.storage.publish(local, key)
        return key

    def write_text(self, text: str, key: str) -> str:
        with self.storage.staging() as tmp:
            local = tmp / "file"
            local.write_text(text)
            self.storage.publish(local, key)
        return self.storage.url(key)

    def write_batch(
        self, dataset: str, batch_id: str, frame: pl.DataFrame, event_time_column: str
    ) -> list[str]:
        """Writes `frame` partitioned by the date of its event time; returns the keys.

        A date-typed event time partitions in one parallel polars write into a local
        staging directory (the partition column is a real column, so files carry nothing
        extra); timestamps are split by day first. Each file is then published.
        """
        if frame.height == 0:
            return []
        if not event_time_column:
            return [self._write(frame, f"{dataset}/part-{batch_id}.parquet")]
        if frame.schema[event_time_column] != pl.Date:
            keyed = frame.with_columns(
                pl.col(event_time_column).dt.date().dt.strftime("%Y-%m-%d").alias("__date")
            )
            return sorted(
                self._write(part.drop("__date"), f"{dataset}/date={day}/part-{batch_id}.parquet")
                for (day,), part in keyed.partition_by("__date", as_dict=True).items()
            )
        written = []
        with self.storage.staging() as staging:
            frame.write_parquet(
                staging, partition_by=event_time_column, compression="zstd", compression_level=1
            )
            for part in sorted(staging.glob(f"{event_time_column}=*/*.parquet")):
                day = part.parent.name.split("=", 1)[1]
                suffix = "" if part.stem.strip("0") == "" else f"-{part.stem}"
                key = f"{dataset}/date={day}/part-{batch_id}{suffix}.parquet"
                self.storage.publish(part, key)
                written.append(key)
        return written

    def write_quarantine(self, dataset: str, batch_id: str, frame: pl.DataFrame) -> str | None:
        if frame.height == 0:
            return None
        return self._write(frame, f"{QUARANTINE}/{dataset}/part-{batch_id}.parquet")

    def scan(self, files: Iterable[str]) -> pl.LazyFrame | None:
        urls = [self.storage.url(f) for f in files]
        if not urls:
            return None
        return pl.scan_parquet(urls, storage_options=self.storage.options)

    def remove_orphans(self, committed: set[str]) -> list[str]:
        """Deletes what a crash left: data files no committed batch lists, and anything
        still staged. Returns the keys."""
        removed = []
        for key in self.storage.list_keys():
            if key.startswith(f"{STAGING}/") or (key.endswith(".parquet") and key not in committed):
                self.storage.delete(key)
                removed.append(key)
        return removed
