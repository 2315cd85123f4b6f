"""Pseudonymization of PII columns on landing: a keyed hash (HMAC-SHA256), so the same
identifier maps to the same pseudonym across datasets (joins still work) while the raw
value never reaches the lake, the quarantine or the logs. The key comes from a secret
reference (env:NAME or file:/path), never from configuration in clear."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import polars as pl

from ingest.schema import DatasetSchema
from wavepod.runtime.status import FailedPrecondition

PSEUDONYM_CHARS = 32  # 128 bits of the HMAC, hex
_RAW, _KEY, _PSEUDONYM = "raw", "fingerprint", "pseudonym"


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

    return frame.with_columns(
        lookup_pseudonyms(frame[name].cast(pl.String), pseudonym).alias(name) for name in columns
    )


def lookup_pseudonyms(
    text: pl.Series,
    pseudonym: Callable[[str], str],
    fingerprint: pl.Expr | None = None,
) -> pl.Series:
    """`pseudonym` of each value (nulls stay null), computed once per distinct value.

    Distinct values are found, and looked up, by a 64-bit `fingerprint` of each (a join
    on integers: at ten million rows about twice as fast as one on the strings). Two
    values sharing a fingerprint would share a pseudonym, so every row is checked
    against the value its fingerprint was computed from; on a clash the lookup is redone
    on the strings themselves.
    """
    if fingerprint is None:
        fingerprint = pl.col(_RAW).hash()
    frame = text.to_frame(_RAW).with_columns(fingerprint.alias(_KEY))
    # First occurrences by index: several times cheaper than unique() carrying the text.
    distinct = frame.drop_nulls(_RAW).select(pl.all().gather(pl.col(_KEY).arg_unique()))
    table = distinct.with_columns(
        pl.Series(_PSEUDONYM, [pseudonym(v) for v in distinct[_RAW].to_list()], pl.String)
    )
    found = frame.join(table, on=_KEY, how="left", maintain_order="left", suffix="_seen")
    raw, seen = pl.col(_RAW), pl.col(f"{_RAW}_seen")
    if found.select((raw.is_null() | (raw == seen)).all()).item():
        return found.select(pl.when(raw.is_not_null()).then(pl.col(_PSEUDONYM)))[_PSEUDONYM]
    exact = frame.drop_nulls(_RAW).select(_RAW).unique()
    exact = exact.with_columns(
        pl.Series(_PSEUDONYM, [pseudonym(v) for v in exact[_RAW].to_list()], pl.String)
    )
    return frame.join(exact, on=_RAW, how="left", maintain_order="left")[_PSEUDONYM]
