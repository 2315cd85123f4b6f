"""Where lake files live: a local directory or an S3-compatible bucket, behind one
small interface chosen by the lake root (`/path` or `s3://bucket/prefix`).

Publishing a file is atomic on both: a rename on a filesystem, a single PUT on S3
(an object appears whole or not at all). Files are written first through a `Staging`
that the storage chooses. In a local lake a file is staged beside its key under a
hidden temporary name (`.<name>.tmp`), so that publishing is a rename within one
directory: never a copy (a container's /tmp and its lake volume are two filesystems),
and no directory made twice (on small VMs, creating a directory costs as much as
writing a day's Parquet file; a batch spanning two years makes 731 of each). For a
bucket, files are staged in the system's temporary directory and uploaded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from wavepod.lake import s3_endpoint_options

TEMPORARY = ".tmp"  # the suffix of a staged file; what a crash leaves is orphaned
LEGACY_STAGING = "_staging/"  # where lakes written before in-place staging staged files


class Staging:
    """Files to publish, written first where the storage stages them, then `publish`ed
    at their keys. Whatever was staged and not published is deleted when it ends."""

    def __init__(self, root: Path, move: Callable[[Path, str], None], beside_key: bool) -> None:
        self.root = root  # every staged file lies under it
        self._move = move  # publishes a finished local file at a key
        self._beside_key = beside_key
        self._pending: set[str] = set()

    def relative(self, key: str) -> str:
        """Where to write `key`'s content, relative to `root` (a partitioned writer's
        base); the writer makes the directories."""
        self._pending.add(key)
        if not self._beside_key:
            return key
        name = PurePosixPath(key)
        return str(name.with_name(f".{name.name}{TEMPORARY}"))

    def local(self, key: str) -> Path:
        """Where to write `key`'s content, its directory made."""
        path = self.root / self.relative(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, key: str) -> None:
        self._move(self.root / self.relative(key), key)
        self._pending.discard(key)

    def discard(self) -> None:
        for key in list(self._pending):
            (self.root / self.relative(key)).unlink(missing_ok=True)
        self._pending.clear()


@contextmanager
def _staging(root: Path, move: Callable[[Path, str], None], beside_key: bool) -> Iterator[Staging]:
    staging = Staging(root, move, beside_key)
    try:
        yield staging
    finally:
        staging.discard()


@contextmanager
def _temporary_staging(move: Callable[[Path, str], None]) -> Iterator[Staging]:
    with (
        tempfile.TemporaryDirectory(prefix="wavepod-staging-") as tmp,
        _staging(Path(tmp), move, beside_key=False) as staging,
    ):
        yield staging


class Storage(Protocol):
    uri: str

    def staging(self) -> AbstractContextManager[Staging]:
        """Where to write files before publishing them; what is left unpublished is
        deleted when the context ends."""

    def list_keys(self) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str:
        """What polars/DuckDB read `key` from."""

    @property
    def options(self) -> dict[str, str] | None:
        """polars `storage_options` for reading."""


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = self.root.as_uri()

    def staging(self) -> AbstractContextManager[Staging]:
        return _staging(self.root, self._rename, beside_key=True)

    def _rename(self, local: Path, key: str) -> None:
        os.replace(local, self.root / key)

    def list_keys(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return str(self.root / key)

    @property
    def options(self) -> dict[str, str] | None:
        return None


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, moto). Credentials come from the standard
    AWS environment/config chain; `endpoint_url` points at a non-AWS server."""

    def __init__(self, uri: str, endpoint_url: str | None = None) -> None:
        import boto3  # only S3 lakes need it

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        self.uri = uri.rstrip("/")
        self._bucket, self._prefix = bucket, prefix.strip("/")
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url)
        credentials = boto3.session.Session().get_credentials()
        region = self._client.meta.region_name or "us-east-1"
        self._options = {"aws_region": region}
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            self._options |= {
                "aws_access_key_id": frozen.access_key,
                "aws_secret_access_key": frozen.secret_key,
            }
            if frozen.token:
                self._options["aws_session_token"] = frozen.token
        self._options |= s3_endpoint_options(endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    def staging(self) -> AbstractContextManager[Staging]:
        return _temporary_staging(self._upload)

    def _upload(self, local: Path, key: str) -> None:
        self._client.upload_file(str(local), self._bucket, self._key(key))
        local.unlink()

    def list_keys(self) -> list[str]:
        found = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=f"{self._prefix}/" if self._prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self._prefix) + 1 :] if self._prefix else item["Key"]
                found.append(key)
        return found

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=self._key(key))

    def url(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._key(key)}"

    @property
    def options(self) -> dict[str, str] | None:
        return self._options


def open_storage(root: str | Path, s3_endpoint_url: str | None = None) -> Storage:
    text = str(root)
    if text.startswith("s3://"):
        return S3Storage(text, s3_endpoint_url)
    return LocalStorage(Path(text))
