from __future__ import annotations

import hashlib
import hmac

import polars as pl
import pytest

from ingest.pii import PSEUDONYM_CHARS, lookup_pseudonyms, pseudonymize
from ingest.schema import Column, ColumnType, DatasetSchema
from wavepod.runtime.status import FailedPrecondition

SCHEMA = DatasetSchema(
    dataset="people",
    version="1.0",
    columns=(Column("person_id", ColumnType.STRING, pii=True), Column("age", ColumnType.INT64)),
)


@pytest.mark.parametrize("key", [b"short", b"k" * 100])
def test_pseudonyms_are_hmac_sha256_of_the_identifier(key: bytes) -> None:
    frame = pl.DataFrame({"person_id": ["a", "b", "a", None], "age": [1, 2, 3, 4]})
    out = pseudonymize(frame, SCHEMA, key)
    expected = hmac.new(key, b"a", hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]
    assert out["person_id"].to_list()[0] == expected == out["person_id"].to_list()[2]
    assert out["person_id"][1] != expected and out["person_id"][3] is None
    assert out["age"].to_list() == [1, 2, 3, 4]


def test_no_key_no_landing() -> None:
    with pytest.raises(FailedPrecondition, match="person_id"):
        pseudonymize(pl.DataFrame({"person_id": ["a"]}), SCHEMA, None)


def test_values_sharing_a_fingerprint_keep_their_own_pseudonyms() -> None:
    # A fingerprint that clashes on purpose (the length): the lookup must notice.
    values = pl.Series(["a", "b", None, "cc", "a", "dd", "b"])
    clashing = pl.col("raw").str.len_bytes().cast(pl.UInt64)
    found = lookup_pseudonyms(values, str.upper, fingerprint=clashing)
    assert found.to_list() == ["A", "B", None, "CC", "A", "DD", "B"]
    assert lookup_pseudonyms(values, str.upper).to_list() == found.to_list()
