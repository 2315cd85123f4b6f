"""Every prediction, appended in batches: JSON lines files under a date partition.

Records go to memory first and a background task writes them every `flush_seconds` or
`flush_rows`; each file is written under a temporary name, fsynced and renamed, so a
reader never sees half a file. The shutdown hook writes what is left after the server
has drained, so a SIGTERM under load loses no answered request's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


class PredictionLog:
    def __init__(self, root: Path, flush_rows: int, flush_seconds: float) -> None:
        self.root = Path(root)
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._buffer: list[Mapping[str, object]] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def append(self, record: Mapping[str, object]) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop())
        self._buffer.append(record)
        if len(self._buffer) >= self._flush_rows:
            self._full.set()

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._flush_seconds)
            self._full.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        records, self._buffer = self._buffer, []
        await asyncio.to_thread(self._write, records)

    def _write(self, records: list[Mapping[str, object]]) -> None:
        now = datetime.now(UTC)
        folder = self.root / f"date={now.date().isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"predictions-{now.strftime('%H%M%S%f')}-{uuid.uuid4().hex[:8]}.jsonl"
        tmp = folder / f".{name}.tmp"
        with tmp.open("w") as f:
            for record in records:
                f.write(json.dumps(record, default=str))
                f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / name)
        self.written += len(records)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush()
        log.info("prediction log flushed", extra={"records": self.written})
