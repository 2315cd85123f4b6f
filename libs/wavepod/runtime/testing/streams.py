"""Reading a progress-streaming RPC (RunIngest, Materialize, ...) in tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def drain_progress(events: Iterable[Any], result_field: str) -> tuple[list[str], Any]:
    """The phases of every `progress` event, and the one event field named `result_field`
    (the stream's final report), which must be present."""
    phases, result = [], None
    for event in events:
        if event.HasField("progress"):
            phases.append(event.progress.phase)
        else:
            result = getattr(event, result_field)
    assert result is not None, f"the stream ended without a {result_field}"
    return phases, result
