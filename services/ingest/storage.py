"""Where lake files live: a local directory or an S3-compatible bucket, behind one
small interface chosen by the lake root (`/path` or `s3://bucket/prefix`).

Publishing a file is atomic on both: a rename on a filesystem, a single PUT on S3
(an object appears whole or not at all). Files are written first into a staging
directory that the storage chooses: inside a local lake (`_staging/`), so that
publishing is a rename on one filesystem and never a copy (a container's /tmp and its
lake volume are two), and in the system's temporary directory for a bucket.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from wavepod.lake import s3_endpoint_options

STAGING = "_staging"  # a local lake's staging area; what a crash leaves there is orphaned


@contextmanager
def _temporary_directory(parent: Path | None = None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wavepod-staging-", dir=parent) as tmp:
        yield Path(tmp)


class Storage(Protocol):
    uri: str

    def staging(self) -> AbstractContextManager[Path]:
        """A fresh local directory to write files into before publishing them; it is
        removed, with anything left in it, when the context ends."""

    def publish(self, local: Path, key: str) -> None:
        """Moves a finished local file to `key`, atomically."""

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

    def staging(self) -> AbstractContextManager[Path]:
        (self.root / STAGING).mkdir(exist_ok=True)
        return _temporary_directory(self.root / STAGING)

    def publish(self, local: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, target)
        except OSError:  # another filesystem: copy beside the target, then rename
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(local, tmp)
            os.replace(tmp, target)
            local.unlink()

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

    def staging(self) -> AbstractContextManager[Path]:
        return _temporary_directory()

    def publish(self, local: Path, key: str) -> None:
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
