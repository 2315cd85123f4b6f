"""Feature settings: WAVEPOD_FEATURE_* (plus the common ones in wavepod.runtime.settings)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from wavepod.runtime import ServiceSettings


class FeatureSettings(ServiceSettings):
    lake: str = Field(
        ".wavepod/lake",
        description="Where sources are read: ingest://host:port (the ingest service's"
        " lineage) or a Parquet directory.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (MinIO) of a lake kept in a bucket; unset: AWS."
        " Credentials: the standard AWS environment.",
    )
    store_root: str = Field(
        ".wavepod/features", description="Materializations and training sets (a directory)."
    )
    online_store: str = Field(
        "memory://", description="memory:// (embedded) or redis://host:port/db."
    )
    online_store_password_ref: str = Field(
        "", description="env:NAME or file:/path of the Redis password (AUTH), if it needs one."
    )
    online_max_age_days: float | None = Field(
        None, gt=0, description="Online values older than this are flagged stale."
    )
    history_until: datetime | None = Field(
        None,
        description="Rows committed by then count as known at their event time (backfilled"
        " history); unset: each dataset's first load.",
    )
