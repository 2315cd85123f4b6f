"""The feature service over real gRPC, reading the lake through a real ingest service:
materialize with streamed progress, online features, training sets, statistics, a late
streamed fill that must not leak, and the errors users see."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import grpc
import polars as pl
import pytest

from feature.testing import SIMULATOR_ONLY, small_pharmacy
from ingest.testing import ingest_env
from wavepod.common.v1 import refs_pb2
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime.status import field_violations
from wavepod.runtime.testing.process import service_process
from wavepod.runtime.testing.streams import drain_progress
from wavepod.simulator.events import fill_events
from wavepod.simulator.schemas import REFILL_SCHEMAS

F = feature_pb2
REFILL = F.FeatureSetRef(name="refill", version="1")


def land(
    stub: ingest_pb2_grpc.IngestServiceStub, folder: Path, frames: dict[str, pl.DataFrame]
) -> None:
    for schema in REFILL_SCHEMAS:
        stub.RegisterSchema(ingest_pb2.RegisterSchemaRequest(schema=schema))
    for name in ("patients", "prescriptions", "fills"):
        path = folder / f"{name}.parquet"
        frames[name].write_parquet(path)
        source_id = stub.RegisterSource(
            ingest_pb2.RegisterSourceRequest(
                source=ingest_pb2.SourceSpec(
                    dataset=name, kind=ingest_pb2.SOURCE_KIND_FILES, location=str(path)
                )
            )
        ).source_id
        events = list(stub.RunIngest(ingest_pb2.RunIngestRequest(source_id=source_id), timeout=120))
        assert events[-1].report.rows_landed == frames[name].height


def materialize(
    stub: feature_pb2_grpc.FeatureServiceStub,
) -> tuple[list[str], F.MaterializeSummary]:
    request = F.MaterializeRequest(feature_set=REFILL)
    return drain_progress(stub.Materialize(request, timeout=120), "summary")


def test_feature_service_end_to_end(tmp_path: Path) -> None:
    data = small_pharmacy(patients=150, seed=21)
    fills = data.fills.drop(SIMULATOR_ONLY)
    with service_process("ingest.server", "ingest", ingest_env(tmp_path / "lake")) as ingest:
        feature_env = {
            "WAVEPOD_FEATURE_LAKE": f"ingest://{ingest.address}",
            "WAVEPOD_FEATURE_STORE_ROOT": str(tmp_path / "features"),
        }
        with (
            service_process("feature.server", "feature", feature_env) as feature,
            grpc.insecure_channel(ingest.address) as ingest_channel,
            grpc.insecure_channel(feature.address) as channel,
        ):
            ingest_stub = ingest_pb2_grpc.IngestServiceStub(ingest_channel)
            land(
                ingest_stub,
                tmp_path,
                {"patients": data.patients, "prescriptions": data.prescriptions, "fills": fills},
            )
            stub = feature_pb2_grpc.FeatureServiceStub(channel)

            [listed] = stub.ListFeatureSets(F.ListFeatureSetsRequest()).feature_sets
            assert listed.ref == REFILL and len(listed.definition_hash) == 64
            assert "pdc_180d" in {f.name for f in listed.features}

            phases, summary = materialize(stub)
            assert {"plan", "compute", "write", "online"} <= set(phases)
            assert summary.rows == fills.height
            assert summary.entities == fills["rx_id"].n_unique() == summary.online_written
            assert summary.partitions_written == fills["fill_date"].dt.strftime("%Y-%m").n_unique()
            assert materialize(stub)[1].partitions_written == 0  # nothing new

            rx = fills.sort("fill_date")["rx_id"][-1]
            online = stub.GetOnlineFeatures(
                F.GetOnlineFeaturesRequest(
                    feature_set=REFILL,
                    entity_ids=[rx, "RX-nope"],
                    features=["days_supply", "channel"],
                )
            )
            first, unknown_rx = online.entities
            assert not first.missing and unknown_rx.missing
            assert not unknown_rx.HasField("event_time")
            latest = (
                fills.filter(pl.col("rx_id") == rx).sort("fill_date", "fill_id").row(-1, named=True)
            )
            supply, channel = online.columns
            assert supply.name == "days_supply"
            assert list(supply.ints.values) == [latest["days_supply"], 0]
            assert list(channel.strings.values) == [latest["channel"], ""]
            assert list(supply.null_positions) == list(channel.null_positions) == [1]
            assert first.event_time.ToDatetime().date() == latest["fill_date"]

            built = stub.BuildTrainingSet(
                F.BuildTrainingSetRequest(feature_set=REFILL), timeout=120
            )
            path = Path(built.training_set.uri)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == built.training_set.content_hash
            assert built.rows == pl.read_parquet(path).height > 0
            assert built.definition_hash == listed.definition_hash

            stats = stub.GetFeatureStats(F.GetFeatureStatsRequest(feature_set=REFILL)).stats
            assert {s.feature for s in stats} == {f.name for f in listed.features}
            gap = next(s for s in stats if s.feature == "last_gap")
            assert gap.HasField("mean") and sum(gap.bin_counts) > 0 and gap.bin_edges[0] < -1e300
            baseline = stub.GetFeatureStats(
                F.GetFeatureStatsRequest(
                    feature_set=REFILL, dataset=refs_pb2.DatasetRef(uri=built.training_set.uri)
                )
            ).stats
            assert next(s for s in baseline if s.feature == "last_gap").rows == built.rows

            # A fill streamed in now, dated in the past: the lake has it, but no label
            # from before today may see it.
            past = latest["fill_date"] - timedelta(days=3)
            late = fills.filter(pl.col("fill_id") == latest["fill_id"]).with_columns(
                pl.lit("F-late").alias("fill_id"), pl.lit(past).alias("fill_date")
            )
            accepted = ingest_stub.StreamEvents(fill_events(late), timeout=60)
            assert accepted.accepted == 1
            assert materialize(stub)[1].partitions_written >= 1
            labels = tmp_path / "labels.parquet"
            pl.DataFrame({"rx_id": [rx], "label_time": [past + timedelta(days=1)]}).write_parquet(
                labels
            )
            again = stub.BuildTrainingSet(
                F.BuildTrainingSetRequest(
                    feature_set=REFILL, labels=refs_pb2.DatasetRef(uri=str(labels))
                ),
                timeout=120,
            )
            row = pl.read_parquet(again.training_set.uri).row(0, named=True)
            assert row["features_as_of"] < past

            with pytest.raises(grpc.RpcError) as unknown:
                stub.GetOnlineFeatures(
                    F.GetOnlineFeaturesRequest(
                        feature_set=F.FeatureSetRef(name="refill", version="9"), entity_ids=[rx]
                    )
                )
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
            assert "no version '9'" in (unknown.value.details() or "")
            with pytest.raises(grpc.RpcError) as bad:
                stub.GetOnlineFeatures(
                    F.GetOnlineFeaturesRequest(feature_set=REFILL, entity_ids=[rx], features=["x"])
                )
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [v.field for v in field_violations(bad.value)] == ["features"]

            assert ingest.terminate(timeout=15) == 0
            with pytest.raises(grpc.RpcError) as down:
                materialize(stub)
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "ingest at" in (down.value.details() or "")
