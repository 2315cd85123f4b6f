"""An S3-compatible server on loopback for tests: moto's server, speaking the S3 API
over HTTP (the same protocol MinIO and AWS speak)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from wavepod.runtime.testing.process import free_port


@contextmanager
def s3_server(bucket: str = "lake") -> Iterator[str]:
    """Yields the endpoint URL of a server holding an empty `bucket`; AWS_* credentials
    for it are set in the environment while the context is open."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "wavepod-test",
        "AWS_SECRET_ACCESS_KEY": "wavepod-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        with mock.patch.dict(os.environ, credentials):
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            yield endpoint
    finally:
        server.stop()
