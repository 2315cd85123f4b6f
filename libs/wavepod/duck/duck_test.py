from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wavepod.duck import connect


def test_sqlite_scanner_loads_offline_and_reads_a_real_file(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as src:
        src.executescript(
            "create table t(a integer, b text); insert into t values (1,'x'),(2,'y');"
        )
    con = connect(extensions=["sqlite_scanner"])
    assert con.sql(f"select * from sqlite_scan('{db}', 't') order by a").fetchall() == [
        (1, "x"),
        (2, "y"),
    ]


def test_unknown_extension_is_named() -> None:
    with pytest.raises(ValueError, match="'spatial'"):
        connect(extensions=["spatial"])
