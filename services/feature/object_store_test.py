"""The production layout of DESIGN.md's lake: ingest keeps it in an S3-compatible bucket
(moto's server on loopback, speaking the S3 API as MinIO does), and the feature service
reads the files ingest's lineage names straight from the bucket: a materialization and
a training set, with the credentials of the standard AWS environment."""

from __future__ import annotations

from pathlib import Path

import boto3
import grpc
import polars as pl

from feature.service_test import REFILL, land, materialize
from feature.testing import SIMULATOR_ONLY, small_pharmacy
from ingest.testing import ingest_env
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.ingest.v1 import ingest_pb2_grpc
from wavepod.runtime.testing.process import service_process
from wavepod.testing.s3 import s3_server


def test_features_are_computed_from_a_lake_in_a_bucket(tmp_path: Path) -> None:
    data = small_pharmacy(patients=60, seed=4)
    fills = data.fills.drop(SIMULATOR_ONLY)
    with s3_server("lake") as endpoint:
        ingest_settings = ingest_env(tmp_path / "unused") | {
            "WAVEPOD_INGEST_LAKE_ROOT": "s3://lake/wavepod",
            "WAVEPOD_INGEST_CATALOG": str(tmp_path / "catalog.duckdb"),
            "WAVEPOD_INGEST_S3_ENDPOINT_URL": endpoint,
        }
        with service_process("ingest.server", "ingest", ingest_settings) as ingest:
            feature_env = {
                "WAVEPOD_FEATURE_LAKE": f"ingest://{ingest.address}",
                "WAVEPOD_FEATURE_S3_ENDPOINT_URL": endpoint,
                "WAVEPOD_FEATURE_STORE_ROOT": str(tmp_path / "features"),
            }
            with (
                service_process("feature.server", "feature", feature_env) as feature,
                grpc.insecure_channel(ingest.address) as ingest_channel,
                grpc.insecure_channel(feature.address) as channel,
            ):
                land(
                    ingest_pb2_grpc.IngestServiceStub(ingest_channel),
                    tmp_path,
                    {
                        "patients": data.patients,
                        "prescriptions": data.prescriptions,
                        "fills": fills,
                    },
                )
                # The rows are in the bucket, not on this filesystem.
                keys = [
                    o["Key"]
                    for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
                        Bucket="lake", Prefix="wavepod/fills/"
                    )["Contents"]
                ]
                assert keys and not (tmp_path / "unused").exists()

                stub = feature_pb2_grpc.FeatureServiceStub(channel)
                _, summary = materialize(stub)
                assert summary.rows == fills.height
                assert summary.entities == fills["rx_id"].n_unique()
                built = stub.BuildTrainingSet(
                    feature_pb2.BuildTrainingSetRequest(feature_set=REFILL), timeout=120
                )
                assert built.rows == pl.read_parquet(built.training_set.uri).height > 0
