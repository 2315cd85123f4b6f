"""Pseudonymization of PII columns on landing: a keyed hash (HMAC-SHA256), so the same
identifier maps to the same pseudonym across datasets (joins still work) while the raw
value never reaches the lake, the quarantine or the logs. The key comes from a secret
reference (env:NAME or file:/path), never from configuration in clear."""

from __future__ import annotations

import hashlib

import polars as pl

from ingest.schema import DatasetSchema
from wavepod.runtime.status import FailedPrecondition

PSEUDONYM_CHARS = 32  # 128 bits of the HMAC, hex


def pii_columns(schema: DatasetSchema) -> list[str]:
    return [c.name for c in schema.columns if c.pii]


def pseudonymize(frame: pl.DataFrame, schema: DatasetSchema, key: bytes | None) -> pl.DataFrame:
    columns = [c for c in pii_columns(schema) if c in frame.columns]
    if not columns:
        return frame
    if not key:
        raise FailedPrecondition(
            f"{schema.dataset} has PII columns {columns} but no pseudonymization key is "
            "configured (WAVEPOD_INGEST_PII_KEY_REF)"
        )
    # HMAC-SHA256 with the key schedule computed once (the same digests hmac.new gives,
    # without rebuilding the padded key for each of millions of identifiers).
    block = key if len(key) <= 64 else hashlib.sha256(key).digest()
    block = block.ljust(64, b"\0")
    inner_base = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer_base = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def pseudonym(value: str) -> str:
        inner = inner_base.copy()
        inner.update(value.encode())
        outer = outer_base.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:PSEUDONYM_CHARS]

    replaced = []
    for name in columns:
        text = frame[name].cast(pl.String)
        uniques = text.drop_nulls().unique()
        # One HMAC per distinct identifier, then a vectorized lookup (a join: faster than
        # replace_strict's mapping at millions of rows). Nulls stay null.
        pseudonyms = pl.DataFrame(
            {"raw": uniques, name: [pseudonym(v) for v in uniques.to_list()]},
            schema={"raw": pl.String, name: pl.String},
        )
        looked_up = text.to_frame("raw").join(
            pseudonyms, on="raw", how="left", maintain_order="left"
        )
        replaced.append(looked_up[name])
    return frame.with_columns(replaced)
