"""DuckDB connections with the scanners wavepod uses, loaded offline.

The sqlite, postgres and httpfs extensions come from the `duckdb-ext-*` wheels (pinned
with DuckDB in 3rdparty/python), never from DuckDB's download host.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import duckdb

EXTENSIONS = ("sqlite_scanner", "postgres_scanner", "httpfs")


def extension_path(name: str) -> Path:
    """Where a `duckdb-ext-*` wheel put `name`; the wheels share the `duckdb_ext`
    namespace package but may be installed in separate directories (PEX does that)."""
    spec = importlib.util.find_spec("duckdb_ext")
    locations = spec.submodule_search_locations if spec else None
    for location in locations or ():
        found = sorted(
            Path(location).glob(f"extensions/v{duckdb.__version__}/*/{name}.duckdb_extension")
        )
        if found:
            return found[0]
    raise RuntimeError(f"DuckDB extension {name!r} not installed (duckdb-ext-* wheels)")


def connect(
    database: str | Path = ":memory:",
    *,
    extensions: Iterable[str] = (),
    threads: int | None = None,
    read_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if threads:
        config["threads"] = threads
    con = duckdb.connect(str(database), read_only=read_only, config=config)
    for name in extensions:
        if name not in EXTENSIONS:
            raise ValueError(f"unknown DuckDB extension {name!r}; known: {EXTENSIONS}")
        con.execute(f"LOAD '{extension_path(name)}'")
    return con
