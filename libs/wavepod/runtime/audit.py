"""An append-only, tamper-evident audit log of admin actions (JSON lines).

Each entry carries the sha256 of the line before it, so an edited, removed or reordered
entry breaks the chain and `entries()` refuses the file, naming the line. Entries are
fsynced before the action is acknowledged. Services also replay their own admin state
from it (the gateway's routing overrides and canary rollbacks), so the log is the one
record of who changed what, and why.
"""

from __future__ import annotations

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


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        existing = self.entries()
        self._seq = existing[-1].seq if existing else 0
        self._last = self._last_digest()

    def _last_digest(self) -> str:
        if not self.path.exists():
            return GENESIS
        lines = self.path.read_text().splitlines()
        return _digest(lines[-1]) if lines else GENESIS

    def append(
        self, actor: str, action: str, target: str, detail: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        with self._lock:
            entry = AuditEntry(
                self._seq + 1, time.time(), actor, action, target, dict(detail or {})
            )
            record = {**entry.__dict__, "prev": self._last}
            line = json.dumps(record, sort_keys=True, default=str)
            # Owner-only: the log names callers and what they changed.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._seq, self._last = entry.seq, _digest(line)
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
