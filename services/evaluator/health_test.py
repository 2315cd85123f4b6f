"""Health reads the prediction log where ingest keeps it: here in an S3-compatible
bucket (moto's server on loopback), through the endpoint the evaluator is given."""

from __future__ import annotations

import io

import boto3
import polars as pl

from evaluator.health import PREDICTION_LOG, _scan
from wavepod.lake import LakeFile, s3_endpoint_options
from wavepod.testing.s3 import s3_server


class BucketLake:
    """The lake as the lineage presents it: committed files by URL (here, objects)."""

    def __init__(self, endpoint: str, urls: list[str]) -> None:
        self.storage_options = s3_endpoint_options(endpoint)
        self._urls = urls

    def files(self, dataset: str) -> list[LakeFile]:
        return [LakeFile(url, None, None) for url in self._urls if f"/{dataset}/" in url]


def test_the_prediction_log_is_read_from_a_bucket() -> None:
    log = pl.DataFrame({"prediction_id": ["p1", "p2"], "model": ["refill", "refill"]})
    with s3_server("lake") as endpoint:
        body = io.BytesIO()
        log.write_parquet(body)
        key = f"wavepod/{PREDICTION_LOG}/date=2024-01-01/part-1.parquet"
        boto3.client("s3", endpoint_url=endpoint).put_object(
            Bucket="lake", Key=key, Body=body.getvalue()
        )
        scan = _scan(BucketLake(endpoint, [f"s3://lake/{key}"]), PREDICTION_LOG)
        assert scan is not None
        assert scan.collect().equals(log)
