"""Client-streamed events land exactly once, in micro-batches that survive a failed stream."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import grpc
import pytest

from wavepod.common.v1 import refs_pb2, values_pb2
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.lake import IngestLake, lineage_records
from wavepod.runtime.status import field_violations
from wavepod.runtime.testing.process import service_process
from wavepod.simulator.config import SimulationConfig
from wavepod.simulator.events import fill_events
from wavepod.simulator.generate import simulate
from wavepod.simulator.publish import customer_fills, publish_csv_drops
from wavepod.simulator.schemas import FILLS, PRESCRIPTIONS

K = ingest_pb2


def test_streamed_fills_land_once_and_survive_a_broken_stream(tmp_path: Path) -> None:
    data = simulate(
        SimulationConfig(patients=200, seed=4, start=date(2024, 1, 1), end=date(2024, 9, 1))
    )
    fills = customer_fills(data.fills)
    publish_csv_drops(data.prescriptions, tmp_path / "rx")
    env = {
        "WAVEPOD_INGEST_LAKE_ROOT": str(tmp_path / "lake"),
        "WAVEPOD_INGEST_PII_KEY_REF": "env:STREAM_PII_KEY",
        "STREAM_PII_KEY": "k",
        "WAVEPOD_INGEST_STREAM_BATCH_SIZE": "100",
    }
    with (
        service_process("ingest.server", "ingest", env) as proc,
        grpc.insecure_channel(proc.address) as channel,
    ):
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        no_refs = K.Schema()
        no_refs.CopyFrom(PRESCRIPTIONS)
        del no_refs.rules[2]  # patients are not part of this test
        stub.RegisterSchema(K.RegisterSchemaRequest(schema=no_refs))
        stub.RegisterSchema(K.RegisterSchemaRequest(schema=FILLS))
        rx = stub.RegisterSource(
            K.RegisterSourceRequest(
                source=K.SourceSpec(
                    dataset="prescriptions",
                    kind=K.SOURCE_KIND_FILES,
                    location=str(tmp_path / "rx" / "*.csv"),
                )
            )
        )
        list(stub.RunIngest(K.RunIngestRequest(source_id=rx.source_id)))

        events = list(fill_events(fills))
        first = stub.StreamEvents(iter(events[:250]), timeout=60)
        assert (first.accepted, first.duplicates, first.quarantined) == (250, 0, 0)

        # A stream that breaks (an oversized message) keeps the micro-batches it committed.
        huge = K.Event(
            dataset="fills",
            event_id="X",
            payload=values_pb2.Row(values={"note": values_pb2.Value(string_value="x" * (5 << 20))}),
        )
        with pytest.raises(grpc.RpcError) as error:
            stub.StreamEvents(iter([*events[250:450], huge]), timeout=60)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        # The client re-sends everything: only what was never landed lands now.
        again = stub.StreamEvents(iter(events), timeout=120)
        assert again.accepted + again.duplicates == len(events)
        assert again.accepted == len(events) - 250 - 200
        lineage = stub.GetLineage(K.GetLineageRequest(dataset=refs_pb2.DatasetRef(name="fills")))
        assert sum(int(r.attributes["rows_landed"]) for r in lineage.records) == len(events)
        # A reader pages through it (a stream's lineage soon outgrows one message).
        assert lineage.page.total_size == len(lineage.records) > 3
        paged = list(lineage_records(stub, "fills", page_size=2))
        assert [r.id for r in paged] == [r.id for r in lineage.records]
        reader = IngestLake(proc.address, page_size=2)
        assert len(reader.files("fills")) == sum(len(r.output_files) for r in lineage.records)
        reader.close()

        with pytest.raises(grpc.RpcError) as error:
            stub.StreamEvents(iter([K.Event(dataset="fills")]))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in field_violations(error.value)] == ["events[0].event_id"]
