"""Online feature lookups, 1 and 100 entities: wavepod versus Feast, p50 and p99.

    ./pants run tests/benchmarks:feature_online -- --quick --json dist/fo.json

The refill feature set (20 features) is materialized from a simulated lake; the same
latest values are written to Feast's SQLite online store. Measured in one run:
- wavepod in-process (`FeatureEngine.online_features`, embedded store; also Redis);
- wavepod over gRPC (`GetOnlineFeatures` on a feature service process on loopback);
- Feast `get_online_features` (SQLite online store, in-process SDK).
Goal: wavepod's in-process p99 at least 10x lower than Feast's. The gRPC figures include
a network round trip and protobuf encoding that Feast's in-process call does not pay.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

from benchmarks.harness import Report, parse_args

ARGS = parse_args(__doc__ or "")
os.environ["POLARS_MAX_THREADS"] = str(ARGS.threads)
os.environ["FEAST_USAGE"] = "False"  # no telemetry calls home

import grpc  # noqa: E402
import polars as pl  # noqa: E402
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig  # noqa: E402
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig  # noqa: E402
from feast.types import Float64, Int64, String  # noqa: E402
from feast.value_type import ValueType  # noqa: E402

from feature.engine import FeatureEngine  # noqa: E402
from feature.online.memory import MemoryStore  # noqa: E402
from feature.online.redis_store import RedisStore  # noqa: E402
from feature.online.store import OnlineStore  # noqa: E402
from feature.sets import builtin_registry  # noqa: E402
from feature.sets.refill import REFILL_V1  # noqa: E402
from feature.testing import write_lake  # noqa: E402
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc  # noqa: E402
from wavepod.lake import DirectoryLake  # noqa: E402
from wavepod.runtime.testing.process import service_process  # noqa: E402
from wavepod.simulator.config import SimulationConfig  # noqa: E402
from wavepod.simulator.generate import simulate  # noqa: E402
from wavepod.testing.redis import redis_server  # noqa: E402

SIZES = {"quick": (5_000, 300), "full": (100_000, 5_000)}  # patients, calls per measurement
BATCHES = (1, 100)
T = TypeVar("T")
_FEAST_TYPES = {pl.Float64: Float64, pl.Int64: Int64, pl.String: String}


def feast_store(root: Path, latest: pl.DataFrame) -> tuple[FeatureStore, list[str]]:
    """Feast with the same latest values in its SQLite online store."""
    root.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="refill_bench",
        registry=str(root / "registry.db"),
        provider="local",
        online_store=SqliteOnlineStoreConfig(path=str(root / "online.db")),
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    source_path = root / "latest.parquet"
    frame = latest.select(
        "rx_id",
        pl.col("fill_date").cast(pl.Datetime("us", "UTC")).alias("event_timestamp"),
        *REFILL_V1.feature_names,
    )
    frame.write_parquet(source_path)
    rx = Entity(name="rx", join_keys=["rx_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="refill",
        entities=[rx],
        ttl=timedelta(days=400),
        schema=[Field(name=f.name, dtype=_FEAST_TYPES[type(f.dtype)]) for f in REFILL_V1.features],
        source=FileSource(path=str(source_path), timestamp_field="event_timestamp"),
    )
    store.apply([rx, view])
    store.write_to_online_store("refill", frame.to_pandas())
    return store, [f"refill:{name}" for name in REFILL_V1.feature_names]


def in_process(engine: FeatureEngine, batches: Iterator[list[str]]) -> None:
    found = engine.online_features(REFILL_V1, next(batches))
    assert not found[0].missing


def feast_lookup(
    store: FeatureStore, features: list[str], batches: Iterator[list[dict[str, str]]]
) -> None:
    store.get_online_features(features=features, entity_rows=next(batches)).to_dict()


def grpc_lookup(
    stub: feature_pb2_grpc.FeatureServiceStub,
    requests: Iterator[feature_pb2.GetOnlineFeaturesRequest],
) -> None:
    stub.GetOnlineFeatures(next(requests), timeout=5)


def run(work: Path, report: Report) -> None:
    patients, calls = SIZES["quick" if ARGS.quick else "full"]
    data = simulate(SimulationConfig(patients=patients, seed=2, start=date(2023, 1, 1)))
    lake = work / "lake"
    write_lake(lake, data)
    rng = random.Random(3)
    entities = data.fills["rx_id"].unique().sort().to_list()
    batches = {n: [rng.sample(entities, n) for _ in range(64)] for n in BATCHES}

    engine = FeatureEngine(builtin_registry(), DirectoryLake(lake), work / "store", MemoryStore())
    engine.materialize(REFILL_V1)
    latest = engine.offline(REFILL_V1).scan().collect().group_by("rx_id").last()
    store, feast_features = feast_store(work / "feast", latest)
    sample = engine.online_features(REFILL_V1, batches[1][0])[0]
    expected = store.get_online_features(
        features=feast_features, entity_rows=[{"rx_id": batches[1][0][0]}]
    ).to_dict()
    assert sample.values["days_supply"] == expected["days_supply"][0], "peers disagree"

    results = {}
    with redis_server() as redis_url:
        redis_engine = _engine_with(RedisStore(redis_url), lake, work / "redis-store")
        for n in BATCHES:
            rows = [[{"rx_id": e} for e in ids] for ids in batches[n]]
            picks = _cycle(batches[n])
            feast_rows = _cycle(rows)
            results[("memory", n)] = report.latency(
                f"wavepod in-process, embedded store, {n} entities",
                partial(in_process, engine, picks),
                calls,
            )
            results[("redis", n)] = report.latency(
                f"wavepod in-process, Redis store, {n} entities",
                partial(in_process, redis_engine, picks),
                calls,
            )
            results[("feast", n)] = report.latency(
                f"Feast get_online_features, SQLite, {n} entities",
                partial(feast_lookup, store, feast_features, feast_rows),
                calls,
            )
    env = {
        "WAVEPOD_FEATURE_LAKE": str(lake),
        "WAVEPOD_FEATURE_STORE_ROOT": str(work / "grpc-store"),
        "WAVEPOD_FEATURE_LOG_LEVEL": "WARNING",
    }
    ref = feature_pb2.FeatureSetRef(name="refill", version="1")
    with (
        service_process("feature.server", "feature", env) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = feature_pb2_grpc.FeatureServiceStub(channel)
        for _ in stub.Materialize(feature_pb2.MaterializeRequest(feature_set=ref), timeout=600):
            pass
        for n in BATCHES:
            requests = _cycle(
                [
                    feature_pb2.GetOnlineFeaturesRequest(feature_set=ref, entity_ids=ids)
                    for ids in batches[n]
                ]
            )
            results[("grpc", n)] = report.latency(
                f"wavepod over gRPC (loopback), {n} entities",
                partial(grpc_lookup, stub, requests),
                calls,
            )
    for n in BATCHES:
        report.compare_latency(results[("memory", n)], results[("feast", n)], ">= 10")
        # Informative: a network store, and a network hop, against an in-process call.
        report.compare_latency(results[("redis", n)], results[("feast", n)], "")
        report.compare_latency(results[("grpc", n)], results[("feast", n)], "")


def _engine_with(store: OnlineStore, lake: Path, root: Path) -> FeatureEngine:
    engine = FeatureEngine(builtin_registry(), DirectoryLake(lake), root, store)
    engine.materialize(REFILL_V1)
    return engine


def _cycle(items: list[T]) -> Iterator[T]:
    while True:
        yield from items


def main() -> int:
    report = Report("feature_online", "quick" if ARGS.quick else "full")
    with tempfile.TemporaryDirectory(prefix="wavepod-bench-") as tmp:
        run(Path(tmp), report)
    report.emit(ARGS.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
