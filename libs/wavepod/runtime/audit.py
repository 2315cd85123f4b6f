"""An append-only, tamper-evident audit log of admin actions (JSON lines).

Each entry carries the sha256 of the line before it, so an edited, removed or reordered
entry breaks the chain and `entries()` refuses the file, naming the line. Entries are
fsynced before the action is acknowledged. Services also replay their own admin state
from it (the gateway's routing overrides and canary rollbacks), so the log is the one
record of who changed what, and why.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


class AuditLogCorrupt(Exception):
    pass


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float  # unix seconds
    actor: str  # the authenticated caller, or the component that acted on its own
    action: str  # e.g. "routing.set", "canary.rollback"
    target: str  # what it acted on, e.g. "refill:3"
    detail: Mapping[str, Any] = field(default_factory=dict)


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def _last_line(fd: int) -> str:
    """The last line of the open file (read from the end: logs grow for years)."""
    size = os.fstat(fd).st_size
    chunk = 1 << 16
    while True:
        start = max(0, size - chunk)
        tail = os.pread(fd, size - start, start).decode()
        lines = tail.splitlines()
        if len(lines) > 1 or start == 0:
            return lines[-1] if lines else ""
        chunk *= 2  # one line longer than the chunk: read further back


class AuditLog:
    """Appends are safe across threads and processes (several replicas, or a restart
    while the old process drains, may share one file): each takes an exclusive lock
    and continues the chain from the file's last line, not from memory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.entries()  # refuses to start on a broken chain

    def append(
        self, actor: str, action: str, target: str, detail: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        # Owner-only: the log names callers and what they changed.
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes
                last = _last_line(fd)
                seq = json.loads(last)["seq"] + 1 if last else 1
                entry = AuditEntry(seq, time.time(), actor, action, target, dict(detail or {}))
                record = {**entry.__dict__, "prev": _digest(last) if last else GENESIS}
                line = json.dumps(record, sort_keys=True, default=str)
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            return entry

    def entries(self) -> list[AuditEntry]:
        """Every entry, oldest first, after checking the chain."""
        if not self.path.exists():
            return []
        out: list[AuditEntry] = []
        previous = GENESIS
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            try:
                record = json.loads(line)
                prev = record.pop("prev")
                entry = AuditEntry(**record)
            except (ValueError, KeyError, TypeError) as error:
                raise AuditLogCorrupt(f"{self.path} line {number}: unreadable ({error})") from None
            if prev != previous or entry.seq != len(out) + 1:
                raise AuditLogCorrupt(
                    f"{self.path} line {number}: the chain is broken (an entry before it was"
                    " edited, removed or reordered)"
                )
            out.append(entry)
            previous = _digest(line)
        return out
