"""Reading lake files: the endpoint options an object-store lake needs, and a lake that
cannot be read answering UNAVAILABLE with the cause instead of an internal error."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from wavepod.lake import DirectoryLake, reading, s3_endpoint_options, scan
from wavepod.runtime.status import Unavailable


def test_endpoint_options_point_reads_at_an_s3_compatible_server() -> None:
    assert s3_endpoint_options(None) == {}
    assert s3_endpoint_options("http://minio:9000") == {
        "aws_endpoint_url": "http://minio:9000",
        "aws_allow_http": "true",
    }
    assert s3_endpoint_options("https://s3.example.com")["aws_allow_http"] == "false"


def test_a_file_that_cannot_be_read_is_unavailable_with_its_cause(tmp_path: Path) -> None:
    folder = tmp_path / "fills" / "date=2024-01-01"
    folder.mkdir(parents=True)
    pl.DataFrame({"fill_id": ["F1"]}).write_parquet(folder / "part.parquet")
    files = DirectoryLake(tmp_path).files("fills")
    (folder / "part.parquet").unlink()  # gone between listing and reading
    gone = "cannot read fills from the lake: .*part.parquet"
    with pytest.raises(Unavailable, match=gone), reading("fills"):
        scan(files, None).collect()
