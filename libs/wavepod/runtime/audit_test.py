import stat
from pathlib import Path

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
