"""A simulated pharmacy lands through the real ingest service over gRPC: patients from
its SQL database, prescriptions from monthly CSV drops, fills from its paginated REST API
(with injected 429s and 503s)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import grpc
import polars as pl
import pytest

from wavepod.common.v1 import refs_pb2
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime.status import field_violations
from wavepod.runtime.testing.process import service_process
from wavepod.runtime.testing.streams import drain_progress
from wavepod.simulator.config import SimulationConfig
from wavepod.simulator.generate import simulate
from wavepod.simulator.publish import customer_fills, publish_all
from wavepod.simulator.rest_api import Faults, serve_fills
from wavepod.simulator.schemas import REFILL_SCHEMAS

K = ingest_pb2


def run_ingest(
    stub: ingest_pb2_grpc.IngestServiceStub, source_id: str
) -> tuple[list[str], K.IngestReport]:
    events = stub.RunIngest(K.RunIngestRequest(source_id=source_id), timeout=120)
    return drain_progress(events, "report")


def test_a_simulated_pharmacy_lands_with_counts_and_lineage(tmp_path: Path) -> None:
    data = simulate(
        SimulationConfig(patients=1500, seed=5, start=date(2023, 6, 1), end=date(2024, 6, 1))
    )
    paths = publish_all(data, tmp_path / "customer")
    env = {
        "WAVEPOD_INGEST_LAKE_ROOT": str(tmp_path / "lake"),
        "WAVEPOD_INGEST_PII_KEY_REF": "env:E2E_PII_KEY",
        "E2E_PII_KEY": "e2e-secret-key",
        "FILLS_API_TOKEN": "fills-api-token",
    }
    faults = Faults(rate_limited=0.1, unavailable=0.1, retry_after_seconds=0, seed=8)
    with (
        serve_fills(customer_fills(data.fills), "fills-api-token", faults, page_size=2000) as api,
        service_process("ingest.server", "ingest", env) as proc,
        grpc.insecure_channel(proc.address) as channel,
    ):
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        for schema in REFILL_SCHEMAS:
            assert stub.RegisterSchema(K.RegisterSchemaRequest(schema=schema)).version == "1.0"
        sources = {
            "patients": K.SourceSpec(
                dataset="patients",
                kind=K.SOURCE_KIND_SQL,
                location=str(paths["patients"]),
                query="SELECT * FROM patients",
            ),
            "prescriptions": K.SourceSpec(
                dataset="prescriptions",
                kind=K.SOURCE_KIND_FILES,
                location=str(paths["prescriptions"] / "prescriptions_*.csv"),
            ),
            "fills": K.SourceSpec(
                dataset="fills",
                kind=K.SOURCE_KIND_REST,
                location=api.url,
                secret_ref="env:FILLS_API_TOKEN",
                options={"max_retries": "20"},
            ),
        }
        expected = {
            "patients": data.patients.height,
            "prescriptions": data.prescriptions.height,
            "fills": data.fills.height,
        }
        for name, spec in sources.items():  # order matters: references need their targets
            source_id = stub.RegisterSource(K.RegisterSourceRequest(source=spec)).source_id
            phases, report = run_ingest(stub, source_id)
            assert phases[0] == "read" and phases[-1] == "commit"
            assert (report.rows_read, report.rows_landed, report.rows_quarantined) == (
                expected[name],
                expected[name],
                0,
            )
            _, again = run_ingest(stub, source_id)
            assert again.duplicate and again.rows_landed == 0

            lineage = stub.GetLineage(
                K.GetLineageRequest(dataset=refs_pb2.DatasetRef(name=name))
            ).records
            [record] = lineage
            assert record.attributes["rows_landed"] == str(expected[name])
            assert record.output.content_hash == report.content_hash
            assert record.producer == "ingest/RunIngest" and record.inputs
            # The files a reader (the feature service) scans: exactly the landed rows.
            assert pl.scan_parquet(list(record.output_files)).collect().height == expected[name]

        profile = stub.ProfileDataset(
            K.ProfileDatasetRequest(dataset=refs_pb2.DatasetRef(name="fills"))
        )
        assert profile.row_count == data.fills.height
        columns = {c.column: c for c in profile.columns}
        assert (
            columns["days_supply"].quantiles
            and columns["fill_id"].distinct_count == data.fills.height
        )
        assert Path(profile.report_uri).read_text().startswith("<!doctype html>")

        listed = stub.ListDatasets(K.ListDatasetsRequest()).datasets
        assert sorted(d.name for d in listed) == ["fills", "patients", "prescriptions"]

        # Bad input: clear statuses that name the field.
        with pytest.raises(grpc.RpcError) as error:
            stub.RegisterSource(
                K.RegisterSourceRequest(
                    source=K.SourceSpec(dataset="fills", kind=K.SOURCE_KIND_SQL)
                )
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert {v.field for v in field_violations(error.value)} == {
            "source.location",
            "source.query",
        }
        incompatible = K.Schema()
        incompatible.CopyFrom(REFILL_SCHEMAS[2])
        incompatible.version = "1.1"
        del incompatible.columns[-1]  # drops pharmacy_id
        with pytest.raises(grpc.RpcError) as error:
            stub.RegisterSchema(K.RegisterSchemaRequest(schema=incompatible))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "pharmacy_id" in (error.value.details() or "")
        with pytest.raises(grpc.RpcError) as error:
            stub.GetSchema(K.GetSchemaRequest(dataset="unknown"))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND

        assert api.faults_served > 0
        logs = proc.logs()
    lake = tmp_path / "lake"
    landed = pl.read_parquet(lake / "fills" / "**" / "*.parquet")
    assert landed.height == data.fills.height
    assert sorted(landed["fill_id"]) == sorted(data.fills["fill_id"])
    # Patient ids are PII: pseudonymized in the lake, absent from the service's logs.
    raw_ids = set(data.patients["patient_id"])
    assert not raw_ids & set(landed["patient_id"])
    assert not any(f'"{pid}"' in logs or f"'{pid}'" in logs for pid in list(raw_ids)[:200])
    assert "e2e-secret-key" not in logs and "fills-api-token" not in logs
