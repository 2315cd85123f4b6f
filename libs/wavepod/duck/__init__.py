"""DuckDB connections with the scanners wavepod uses, loaded offline.

The sqlite, postgres and httpfs extensions come from the `duckdb-ext-*` wheels (pinned
with DuckDB in 3rdparty/python), never from DuckDB's download host.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import duckdb

EXTENSIONS = ("sqlite_scanner", "postgres_scanner", "httpfs")
POSTGRES_SCHEMES = ("postgres://", "postgresql://")


class AttachError(Exception):
    """A database could not be attached; the message names no password."""


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


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def redact(location: str) -> str:
    """`location` with any password in it replaced, fit to record or log."""
    if "://" in location and "@" in location:
        scheme, rest = location.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        if ":" in credentials:
            return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return location


def attach(
    con: duckdb.DuckDBPyConnection,
    location: str,
    alias: str,
    *,
    password: str = "",
    read_only: bool = False,
) -> str:
    """Attaches a PostgreSQL database (a `postgresql://user@host/db` URL; the password,
    from a secret, is given apart so that no stored URL carries it) or a SQLite file as
    `alias`, and makes it the default. Returns the kind: "postgres" or "sqlite"."""
    kind = "postgres" if is_postgres(location) else "sqlite"
    target = location
    if kind == "postgres" and password:
        scheme, rest = location.split("://", 1)
        user, host = rest.split("@", 1) if "@" in rest else ("", rest)
        target = f"{scheme}://{user}:{quote(password, safe='')}@{host}"
    options = f"TYPE {kind}, READ_ONLY" if read_only else f"TYPE {kind}"
    try:
        con.execute(f"ATTACH '{target}' AS {alias} ({options})")
    except duckdb.Error as error:
        # DuckDB's message may echo the connection string: keep only its first line.
        reason = str(error).replace(target, redact(target)).splitlines()[0]
        raise AttachError(
            f"cannot reach the {kind} database {redact(location)}: {reason}"
        ) from error
    con.execute(f"USE {alias}")
    return kind
