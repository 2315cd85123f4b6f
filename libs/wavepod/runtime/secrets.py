"""Secrets by reference: `env:NAME` or `file:/path` (e.g. a mounted Kubernetes secret).

Specs and logs carry only the reference, never the value.
"""

from __future__ import annotations

import os
from pathlib import Path

from wavepod.runtime.status import FieldViolation, InvalidArgument


def read_secret(ref: str, field: str = "secret_ref") -> str:
    kind, _, name = ref.partition(":")
    if kind == "env" and name:
        value = os.environ.get(name)
        if value is None:
            raise InvalidArgument(FieldViolation(field, f"environment variable {name} is not set"))
        return value
    if kind == "file" and name:
        try:
            return Path(name).read_text().strip()
        except OSError as error:
            raise InvalidArgument(
                FieldViolation(field, f"cannot read secret file {name}: {error.strerror}")
            ) from error
    raise InvalidArgument(FieldViolation(field, "must be env:NAME or file:/path"))


def optional_secret(ref: str, field: str) -> str:
    """The secret `ref` names, or "" when no reference is configured."""
    return read_secret(ref, field) if ref else ""


def write_private(path: Path, text: str) -> None:
    """Writes `text` to a file only its owner may read, from the first byte on (an
    existing file is narrowed before it is rewritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)
        out.write(text)
