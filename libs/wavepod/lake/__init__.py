"""Reading the lake: committed files of a dataset and when each was committed (feature
sets read their sources through it; the evaluator reads the prediction log and feedback).

Two backends behind one small interface, chosen by URL (`open_lake`):
- `ingest://host:port`: the ingest service's lineage (the production path): only files of
  committed batches, with the batch's commit time;
- a directory (or `file://`): any Parquet lake laid out as `<dataset>/**/*.parquet`, e.g.
  written by another tool. It keeps no ingestion record, so its rows count as known at
  their own event time.

Files named by the lineage may be objects in an S3-compatible bucket (ingest's lake root
`s3://...`): polars reads them with the credentials of the standard AWS environment
(`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, a web identity or the instance's role) and
the endpoint a reader is given (MinIO's; unset: AWS). `reading()` turns a lake that
cannot be read into UNAVAILABLE naming the cause.

The commit time is what the point-in-time join calls ingestion time. A dataset's first
load is its history: rows committed by then count as known at their own event time
(otherwise a bulk backfill would make all history invisible to every past label); rows
committed later are known only from their commit time on. Callers can move that line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import grpc
import polars as pl

from wavepod.common.v1 import refs_pb2
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime.status import FailedPrecondition, NotFound, Unavailable

INGESTED_AT = "__ingested_at"
_FILE = "__file"
_DAY = re.compile(r"date=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class LakeFile:
    url: str
    committed_at: datetime | None  # naive UTC; None: unknown (known at event time)
    day: date | None  # from a `date=YYYY-MM-DD` partition, when the layout has one


class Lake(Protocol):
    @property
    def storage_options(self) -> dict[str, str] | None:
        """What polars needs to read the files' URLs (an object store's endpoint)."""

    def files(self, dataset: str) -> list[LakeFile]:
        """The dataset's committed files; NotFound when there is no such dataset."""


def s3_endpoint_options(endpoint_url: str | None) -> dict[str, str]:
    """polars `storage_options` that point S3 reads at `endpoint_url` (unset: AWS)."""
    if not endpoint_url:
        return {}
    return {
        "aws_endpoint_url": endpoint_url,
        "aws_allow_http": str(endpoint_url.startswith("http://")).lower(),
    }


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Raises Unavailable, naming `what` and the cause, when the lake's files cannot be
    read (an object store that is down or refuses the credentials, a file gone)."""
    try:
        yield
    except OSError as error:
        cause = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise Unavailable(f"cannot read {what} from the lake: {cause}") from error


def _day(url: str) -> date | None:
    found = _DAY.search(url)
    return date.fromisoformat(found.group(1)) if found else None


class DirectoryLake:
    storage_options: dict[str, str] | None = None  # local files

    def __init__(self, root: str | Path) -> None:
        self.root = Path(str(root).removeprefix("file://"))

    def files(self, dataset: str) -> list[LakeFile]:
        folder = self.root / dataset
        if not folder.is_dir():
            raise NotFound(f"unknown dataset {dataset!r}: no folder {folder}")
        return [
            LakeFile(str(path), None, _day(str(path))) for path in sorted(folder.rglob("*.parquet"))
        ]


def lineage_records(
    stub: ingest_pb2_grpc.IngestServiceStub,
    dataset: str,
    page_size: int = 0,
    **call: object,
) -> Iterator[refs_pb2.LineageRecord]:
    """Every lineage record of a dataset, a page at a time (a stream's lineage soon
    outgrows one message). `call`: what each GetLineage call takes (timeout, metadata)."""
    token = ""
    while True:
        reply = stub.GetLineage(
            ingest_pb2.GetLineageRequest(
                dataset=refs_pb2.DatasetRef(name=dataset),
                page=refs_pb2.PageRequest(page_size=page_size, page_token=token),
            ),
            **call,
        )
        yield from reply.records
        token = reply.page.next_page_token
        if not token:
            return


class IngestLake:
    """Reads the ingest service's lineage over gRPC (sync: callers run it in threads)."""

    def __init__(
        self,
        target: str,
        token: str | None = None,
        timeout: float = 30.0,
        s3_endpoint_url: str | None = None,
        page_size: int = 0,
    ) -> None:
        self.storage_options = s3_endpoint_options(s3_endpoint_url) or None
        self._page_size = page_size  # 0: ingest's default
        self._channel = grpc.insecure_channel(target)
        self._stub = ingest_pb2_grpc.IngestServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._target = target

    def files(self, dataset: str) -> list[LakeFile]:
        try:
            records = list(
                lineage_records(
                    self._stub,
                    dataset,
                    self._page_size,
                    timeout=self._timeout,
                    metadata=self._metadata,
                )
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"unknown dataset {dataset!r}: {error.details()}") from None
            if error.code() in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
            ):
                raise FailedPrecondition(
                    f"ingest at {self._target} refused this service's token"
                    f" ({error.code().name}: {error.details()}); set WAVEPOD_<SERVICE>_AUTH_TOKEN"
                ) from None
            raise Unavailable(
                f"ingest at {self._target} answered {error.code().name}: {error.details()}"
            ) from None
        return [
            LakeFile(url, record.created_at.ToDatetime(), _day(url))
            for record in records
            if record.attributes.get("status") == "committed"
            for url in record.output_files
        ]

    def close(self) -> None:
        self._channel.close()


def open_lake(
    url: str, token: str | None = None, timeout: float = 30.0, s3_endpoint_url: str | None = None
) -> Lake:
    """`token` is the bearer token presented to the ingest service (when it checks one);
    `s3_endpoint_url` the S3-compatible server its files are read from, when they are
    objects there."""
    if url.startswith("ingest://"):
        return IngestLake(url.removeprefix("ingest://"), token, timeout, s3_endpoint_url)
    return DirectoryLake(url)


def history_cutoff(files: Sequence[LakeFile]) -> datetime | None:
    """The end of a dataset's first load: the commit time of its earliest file."""
    return min((f.committed_at for f in files if f.committed_at), default=None)


def arrived_late(file: LakeFile, history_until: datetime | None) -> datetime | None:
    """When the file's rows became known, if after the history load; else None."""
    if file.committed_at is None or (history_until and file.committed_at <= history_until):
        return None
    return file.committed_at


def scan_committed(lake: Lake, dataset: str) -> pl.LazyFrame | None:
    """A dataset's committed rows, lazily (filters then skip the row groups their
    statistics exclude instead of reading every file); None while it has no files."""
    try:
        files = lake.files(dataset)
    except NotFound:
        return None
    if not files:
        return None
    return _rows([f.url for f in files], lake.storage_options)


def _rows(
    urls: list[str], storage_options: dict[str, str] | None, file_column: str | None = None
) -> pl.LazyFrame:
    """How every reader here reads a dataset's files: columns from the files themselves
    (no hive columns from `date=` paths); a file without a column reads it as null."""
    return pl.scan_parquet(
        urls,
        include_file_paths=file_column,
        storage_options=storage_options,
        hive_partitioning=False,
        missing_columns="insert",
        extra_columns="ignore",
    )


def scan(
    files: Sequence[LakeFile],
    history_until: datetime | None,
    storage_options: dict[str, str] | None = None,
) -> pl.LazyFrame:
    """The files' rows plus `__ingested_at`: null for history (known at event time), else
    the commit time of the row's file."""
    if not files:
        raise FailedPrecondition("the dataset has no committed files yet: ingest it first")
    urls = [f.url for f in files]
    late = [arrived_late(f, history_until) for f in files]
    rows = _rows(urls, storage_options, _FILE if any(late) else None)
    if not any(late):  # all history: no per-file join needed
        return rows.with_columns(pl.lit(None, pl.Datetime("us")).alias(INGESTED_AT))
    committed = pl.LazyFrame(
        {_FILE: urls, INGESTED_AT: late}, schema={_FILE: pl.String, INGESTED_AT: pl.Datetime("us")}
    )
    return rows.join(committed, on=_FILE, how="left").drop(_FILE)
