"""Ingest settings: WAVEPOD_INGEST_* (plus the common ones in wavepod.runtime.settings)."""

from __future__ import annotations

from pydantic import Field

from wavepod.runtime import ServiceSettings


class IngestSettings(ServiceSettings):
    lake_root: str = Field(
        ".wavepod/lake", description="Lake root: a directory or s3://bucket/prefix."
    )
    catalog: str | None = Field(
        None,
        description="Schemas, sources and lineage: a DuckDB file, or a postgresql://user@host/db"
        " URL (production); default <lake_root>/_catalog.duckdb for a local lake.",
    )
    catalog_password_ref: str = Field(
        "", description="env:NAME or file:/path of the PostgreSQL catalog's password."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, moto); unset: AWS."
    )
    pii_key_ref: str = Field(
        "", description="env:NAME or file:/path of the key that pseudonymizes PII columns."
    )
    stream_batch_size: int = Field(
        5000, gt=0, description="StreamEvents lands events in micro-batches of this many."
    )
    kept_values_max_mb: int = Field(
        1024,
        ge=0,
        description="Memory for the landed keys and referenced values kept between batches;"
        " past it, they are read from the lake for every batch.",
    )
