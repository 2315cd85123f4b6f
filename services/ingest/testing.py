"""Helpers for tests that run an ingest service process."""

from __future__ import annotations

from pathlib import Path


def ingest_env(lake_root: Path) -> dict[str, str]:
    """Settings for an ingest process under test: its lake at `lake_root`, and the
    pseudonymization key passed as production passes it (a secret reference)."""
    return {
        "WAVEPOD_INGEST_LAKE_ROOT": str(lake_root),
        "WAVEPOD_INGEST_PII_KEY_REF": "env:WAVEPOD_TEST_PII_KEY",
        "WAVEPOD_TEST_PII_KEY": "test-key",
    }
