"""A dataset's committed rows read where ingest keeps them: here objects in an
S3-compatible bucket (moto's server on loopback), through the endpoint a reader (the
feature service, the evaluator) is given."""

from __future__ import annotations

import io

import boto3
import polars as pl

from wavepod.lake import LakeFile, s3_endpoint_options, scan_committed
from wavepod.testing.s3 import s3_server


class BucketLake:
    """The lake as the lineage presents it: committed files by URL (here, objects)."""

    def __init__(self, endpoint: str, urls: list[str]) -> None:
        self.storage_options = s3_endpoint_options(endpoint)
        self._urls = urls

    def files(self, dataset: str) -> list[LakeFile]:
        return [LakeFile(url, None, None) for url in self._urls if f"/{dataset}/" in url]


def test_committed_rows_are_read_from_a_bucket() -> None:
    log = pl.DataFrame({"prediction_id": ["p1", "p2"], "model": ["refill", "refill"]})
    sparse = pl.DataFrame({"prediction_id": ["p3"]})  # a file without the model column
    with s3_server("lake") as endpoint:
        keys = []
        for day, frame in (("2024-01-01", log), ("2024-01-02", sparse)):
            body = io.BytesIO()
            frame.write_parquet(body)
            keys.append(f"wavepod/prediction_log/date={day}/part-1.parquet")
            boto3.client("s3", endpoint_url=endpoint).put_object(
                Bucket="lake", Key=keys[-1], Body=body.getvalue()
            )
        lake = BucketLake(endpoint, [f"s3://lake/{key}" for key in keys])
        scan = scan_committed(lake, "prediction_log")
        assert scan is not None
        rows = scan.filter(pl.col("model") == "refill").collect()
        assert rows.equals(log)  # no partition column added; the sparse file's gap is null
        assert scan.collect().height == 3
        assert scan_committed(lake, "feedback") is None  # no files yet
