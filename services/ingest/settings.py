"""Ingest settings: WAVEPOD_INGEST_* (plus the common ones in wavepod.runtime.settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from wavepod.runtime import ServiceSettings


class IngestSettings(ServiceSettings):
    lake_root: Path = Field(
        Path(".wavepod/lake"), description="Lake directory: Parquet data, quarantine, catalog."
    )
