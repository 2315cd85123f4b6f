import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from wavepod.runtime.audit import AuditLog, AuditLogCorrupt


def test_entries_survive_a_restart_and_the_chain_continues(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.jsonl"
    log = AuditLog(path)
    log.append("alice", "routing.set", "refill", {"canary_share": 0.1})
    log.append("gateway/slo", "canary.rollback", "refill:3", {"reason": "p95 900 ms > 250 ms"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    reopened = AuditLog(path)
    third = reopened.append("alice", "routing.set", "refill", {"canary_share": 0.0})
    entries = AuditLog(path).entries()
    assert [(e.seq, e.actor, e.action) for e in entries] == [
        (1, "alice", "routing.set"),
        (2, "gateway/slo", "canary.rollback"),
        (3, "alice", "routing.set"),
    ]
    assert third.seq == 3 and entries[1].detail == {"reason": "p95 900 ms > 250 ms"}


@pytest.mark.parametrize("tamper", ["edit", "remove", "reorder"])
def test_a_tampered_log_is_refused_naming_the_line(tmp_path: Path, tamper: str) -> None:
    path = tmp_path / "log.jsonl"
    log = AuditLog(path)
    for share in (0.1, 0.2, 0.3):
        log.append("alice", "routing.set", "refill", {"canary_share": share})
    lines = path.read_text().splitlines()
    if tamper == "edit":
        lines[1] = lines[1].replace("0.2", "0.9")
    elif tamper == "remove":
        del lines[1]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AuditLogCorrupt, match=r"line [23]: the chain is broken"):
        AuditLog(path)


def _append_many(path: str, actor: str, count: int, start: Any) -> None:
    log = AuditLog(path)
    start.wait(timeout=30)  # all writers open the log first, then append at once
    for i in range(count):
        log.append(actor, "routing.set", "refill", {"i": i})


def test_writers_in_several_processes_keep_one_chain(tmp_path: Path) -> None:
    # Replicas (or a restarted service beside the draining one) share one file.
    path = tmp_path / "log.jsonl"
    AuditLog(path).append("setup", "routing.set", "refill")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    writers = [
        context.Process(target=_append_many, args=(str(path), f"replica-{n}", 40, start))
        for n in range(3)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    entries = AuditLog(path).entries()  # checks the chain
    assert [e.seq for e in entries] == list(range(1, 122))
    for n in range(3):
        mine = [e.detail["i"] for e in entries if e.actor == f"replica-{n}"]
        assert mine == list(range(40))
