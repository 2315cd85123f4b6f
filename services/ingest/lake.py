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
from polars.io.partition import FileProviderArgs

from ingest.storage import LEGACY_STAGING, TEMPORARY, Storage

QUARANTINE = "_quarantine"
REPORTS = "_reports"


class Lake:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.uri = storage.uri

    def _write(self, frame: pl.DataFrame, key: str) -> str:
        with self.storage.staging() as staging:
            frame.write_parquet(staging.local(key), compression="zstd", statistics=True)
            staging.publish(key)
        return key

    def write_text(self, text: str, key: str) -> str:
        with self.storage.staging() as staging:
            staging.local(key).write_text(text)
            staging.publish(key)
        return self.storage.url(key)

    def write_batch(
        self, dataset: str, batch_id: str, frame: pl.DataFrame, event_time_column: str
    ) -> list[str]:
        """Writes `frame` partitioned by the date of its event time; returns the keys.

        One parallel polars write stages every day's file where the storage stages it
        (in a local lake: beside its final name), then each is published.
        `PartitionBy` is marked unstable in polars; the lock pins the version.
        """
        if frame.height == 0:
            return []
        if not event_time_column:
            return [self._write(frame, f"{dataset}/part-{batch_id}.parquet")]
        event_time = pl.col(event_time_column)
        day = event_time if frame.schema[event_time_column] == pl.Date else event_time.dt.date()
        keys: list[str] = []
        with self.storage.staging() as staging:

            def stage(file: FileProviderArgs) -> str:
                index = file.index_in_partition
                suffix = f"-{index:08d}" if index else ""
                key = (
                    f"{dataset}/date={file.partition_keys.item(0, 0)}/"
                    f"part-{batch_id}{suffix}.parquet"
                )
                keys.append(key)
                return staging.relative(key)

            frame.lazy().sink_parquet(
                pl.PartitionBy(
                    staging.root,
                    key={"__date": day},
                    include_key=False,  # the event time column stays; the day is not added
                    file_path_provider=stage,
                    approximate_bytes_per_file=None,  # one file per day
                ),
                compression="zstd",
                compression_level=1,
                mkdir=True,
            )
            for key in keys:
                staging.publish(key)
        return sorted(keys)

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
            staged = key.endswith(TEMPORARY) or key.startswith(LEGACY_STAGING)
            if staged or (key.endswith(".parquet") and key not in committed):
                self.storage.delete(key)
                removed.append(key)
        return removed
