from __future__ import annotations

from pathlib import Path

import pytest

from wavepod.runtime.secrets import read_secret, write_private
from wavepod.runtime.status import InvalidArgument


def test_private_files_are_owner_only_even_when_they_existed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("an older, longer value")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o600
    assert read_secret(f"file:{path}") == "new"


def test_a_secret_reference_must_name_where_it_lives() -> None:
    with pytest.raises(InvalidArgument, match="secret_ref"):
        read_secret("plain-text-secret")
