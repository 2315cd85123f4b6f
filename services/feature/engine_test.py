"""The feature engine over a small simulated lake: incremental and resumable
materialization, leakage cases through the whole path, bad input, statistics, and both
online backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import feature.materialize as materialize_module
from feature.definition import Feature, FeatureRegistry, FeatureSet
from feature.engine import FeatureEngine
from feature.online.memory import MemoryStore
from feature.online.redis_store import RedisStore
from feature.online.store import OnlineStore
from feature.sets import builtin_registry
from feature.sets.refill import REFILL_V1
from feature.stats import PARTITION, merge, summarize
from feature.testing import small_pharmacy, write_fills, write_lake
from wavepod.lake import DirectoryLake, LakeFile
from wavepod.runtime.status import FailedPrecondition, InvalidArgument, NotFound
from wavepod.simulator.generate import PharmacyData
from wavepod.testing.redis import redis_server

# History was loaded before the simulated period; late files arrive within it.
HISTORY_LOADED = datetime(2023, 1, 1)


class CommittedLake(DirectoryLake):
    """A directory lake that also knows when files were committed, as ingest's lineage
    does: files listed in `late` arrived at the given time, the rest with the history."""

    def __init__(self, root: Path, late: dict[str, datetime]) -> None:
        super().__init__(root)
        self.late = late

    def files(self, dataset: str) -> list[LakeFile]:
        return [
            replace(f, committed_at=self.late.get(Path(f.url).name, HISTORY_LOADED))
            for f in super().files(dataset)
        ]


@pytest.fixture(scope="module")
def pharmacy() -> PharmacyData:
    return small_pharmacy(patients=120, seed=11)


def engine_for(
    tmp_path: Path,
    data: PharmacyData,
    late: dict[str, datetime] | None = None,
    online: OnlineStore | None = None,
) -> FeatureEngine:
    write_lake(tmp_path / "lake", data)
    return FeatureEngine(
        builtin_registry(),
        CommittedLake(tmp_path / "lake", late or {}),
        tmp_path / "store",
        online or MemoryStore(),
        history_until=HISTORY_LOADED,
    )


def offline_rows(engine: FeatureEngine) -> pl.DataFrame:
    return engine.offline(REFILL_V1).scan().collect().sort("rx_id", "fill_date", "fill_id")


def months(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["fill_date"].dt.strftime("%Y-%m").unique())


def test_materialization_is_incremental_by_month(tmp_path: Path, pharmacy: PharmacyData) -> None:
    engine = engine_for(tmp_path, pharmacy)
    phases: list[str] = []
    first = engine.materialize(REFILL_V1, progress=lambda phase, done, total: phases.append(phase))
    parts = len(months(pharmacy.fills))
    assert (first.partitions_written, first.partitions_skipped) == (parts, 0)
    assert first.rows == pharmacy.fills.height
    assert first.entities == pharmacy.fills["rx_id"].n_unique() == first.online_written
    assert {"plan", "compute", "write", "online"} <= set(phases)

    again = engine.materialize(REFILL_V1)
    assert (again.partitions_written, again.partitions_skipped) == (0, parts)
    assert again.content_hash == first.content_hash

    # A late file for an early day: its month and every later one are recomputed.
    early = date.fromisoformat(months(pharmacy.fills)[3] + "-15")
    late_fill = (
        pharmacy.fills.filter(pl.col("fill_date") == early)
        .head(1)
        .with_columns(pl.lit("F-late").alias("fill_id"))
    )
    write_fills(tmp_path / "lake", late_fill, name="late")
    third = engine.materialize(REFILL_V1)
    assert third.partitions_written == parts - 3 and third.partitions_skipped == 3
    assert third.rows == first.rows + 1 and third.content_hash != first.content_hash

    # A range limits the work to the months it overlaps.
    window = engine.materialize(REFILL_V1, start=date(2023, 3, 10), end=date(2023, 5, 2))
    assert (window.partitions_written, window.partitions_skipped) == (0, 3)


def test_a_crash_mid_write_resumes_where_it_stopped(
    tmp_path: Path, pharmacy: PharmacyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_for(tmp_path / "a", pharmacy)
    monkeypatch.setattr(materialize_module, "CHUNK_PARTITIONS", 4)
    original = materialize_module._write_partitions
    calls = []

    def crash_on_third_chunk(*args: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk unplugged")
        original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(materialize_module, "_write_partitions", crash_on_third_chunk)
    with pytest.raises(OSError, match="disk unplugged"):
        engine.materialize(REFILL_V1)
    # Whole chunks only, at most the two written before the crash (a chunk commits once
    # its statistics are ready too), and they are not redone.
    committed = len(engine.offline(REFILL_V1).manifest().partitions)
    assert committed in (0, 4, 8)
    monkeypatch.setattr(materialize_module, "_write_partitions", original)
    resumed = engine.materialize(REFILL_V1)
    assert resumed.partitions_skipped == committed
    assert resumed.partitions_written == len(months(pharmacy.fills)) - committed
    clean = engine_for(tmp_path / "b", pharmacy)
    clean.materialize(REFILL_V1)
    assert offline_rows(engine).equals(offline_rows(clean))
    key = [PARTITION, "feature", "kind", "key"]
    resumed_stats = engine.offline(REFILL_V1).stats().sort(key)
    clean_stats = clean.offline(REFILL_V1).stats().sort(key)
    assert resumed_stats.select(key).equals(clean_stats.select(key))
    assert resumed_stats["value"].to_list() == pytest.approx(clean_stats["value"].to_list())


def _labels(path: Path, rows: list[tuple[str, object]]) -> str:
    pl.DataFrame(
        {"rx_id": [r for r, _ in rows], "label_time": [t for _, t in rows], "y": range(len(rows))}
    ).write_parquet(path)
    return str(path)


def test_training_sets_never_see_what_was_not_known(tmp_path: Path, pharmacy: PharmacyData) -> None:
    """Leakage cases through lake -> materialization -> training set."""
    rx = pharmacy.fills.group_by("rx_id").len().sort("len", "rx_id").row(-1)[0]
    days = sorted(pharmacy.fills.filter(pl.col("rx_id") == rx)["fill_date"].to_list())
    late_day = days[3] + timedelta(days=2)  # a fill that reached the lake 20 days late
    arrived = datetime.combine(late_day + timedelta(days=20), datetime.min.time())
    late_fill = (
        pharmacy.fills.filter(pl.col("rx_id") == rx)
        .head(1)
        .with_columns(pl.lit("F-late").alias("fill_id"), pl.lit(late_day).alias("fill_date"))
    )
    engine = engine_for(tmp_path, pharmacy, late={"late.parquet": arrived})
    write_fills(tmp_path / "lake", late_fill, name="late")

    labels = _labels(
        tmp_path / "labels.parquet",
        [
            (rx, days[2]),  # a fill on the label's own day is not history
            (rx, late_day + timedelta(days=1)),  # the late fill had not arrived yet
            (rx, arrived.date() + timedelta(days=1)),  # now it had
            ("RX-unknown", days[2]),  # no history at all
            (rx, days[0]),  # before the first fill
        ],
    )
    built = engine.training_set(REFILL_V1, labels)
    got = pl.read_parquet(built.uri).sort("y")
    as_of = got["features_as_of"].to_list()
    assert as_of[0] == days[1]
    assert as_of[1] == days[3]  # not late_day: it was ingested later
    assert as_of[2] == max(d for d in [*days, late_day] if d <= arrived.date())
    assert got["has_history"].to_list() == [True, True, True, False, False]
    assert got.row(3, named=True)["last_gap"] is None
    assert built.feature_set == "refill:1" and len(built.content_hash) == 64
    # The same inputs give the same dataset, byte for byte.
    assert engine.training_set(REFILL_V1, labels).content_hash == built.content_hash


def test_bad_input_is_named(tmp_path: Path, pharmacy: PharmacyData) -> None:
    engine = engine_for(tmp_path, pharmacy)
    with pytest.raises(FailedPrecondition, match="not materialized"):
        engine.offline(REFILL_V1).scan()
    with pytest.raises(NotFound, match="unknown feature set 'nope'"):
        engine.feature_set("nope", "1")
    with pytest.raises(NotFound, match="has no version '7'"):
        engine.feature_set("refill", "7")
    with pytest.raises(InvalidArgument) as missing:
        engine.feature_set("", "1")
    assert missing.value.violations[0].field == "feature_set.name"

    def register(fs: FeatureSet) -> FeatureSet:
        engine.registry.register(fs)
        return fs

    typo = register(
        replace(
            REFILL_V1,
            version="typo",
            features=(Feature("copay_x2", pl.col("copay_usd") * 2, pl.Float64()),),
        )
    )
    with pytest.raises(InvalidArgument) as error:
        engine.materialize(typo)
    assert [(v.field, v.description) for v in error.value.violations] == [
        ("feature_set.features.copay_x2", "references missing columns ['copay_usd']")
    ]

    short = tmp_path / "short"
    write_lake(
        short,
        PharmacyData(
            pharmacy.patients,
            pharmacy.prescriptions,
            pharmacy.fills.filter(pl.col("fill_date") < date(2023, 4, 1)),
        ),
    )
    short_engine = FeatureEngine(
        builtin_registry(), DirectoryLake(short), tmp_path / "s", MemoryStore()
    )
    with pytest.raises(InvalidArgument) as window:
        short_engine.materialize(REFILL_V1)
    assert any(
        v.field == "feature_set.features.fills_365d" and "longer than the data" in v.description
        for v in window.value.violations
    )

    with pytest.raises(InvalidArgument, match="features"):
        engine.online_features(REFILL_V1, ["RX1"], ["no_such_feature"])
    with pytest.raises(InvalidArgument) as labels_error:
        engine.training_set(REFILL_V1, _labels(tmp_path / "l.parquet", []))
    assert labels_error.value.violations[0].field == "labels"
    pl.DataFrame({"patient": ["x"]}).write_parquet(tmp_path / "wrong.parquet")
    with pytest.raises(InvalidArgument, match="rx_id"):
        engine.training_set(REFILL_V1, str(tmp_path / "wrong.parquet"))
    with pytest.raises(NotFound):
        FeatureEngine(
            builtin_registry(), DirectoryLake(tmp_path / "empty"), tmp_path / "e", MemoryStore()
        ).materialize(REFILL_V1)


def test_statistics_merge_across_partitions(tmp_path: Path, pharmacy: PharmacyData) -> None:
    engine = engine_for(tmp_path, pharmacy)
    engine.materialize(REFILL_V1)
    offline = engine.offline(REFILL_V1)
    rows = offline.scan().collect()
    edges = offline.manifest().edges
    by_day = offline.stats()
    assert sorted(by_day[PARTITION].unique()) == months(rows)
    whole = summarize(rows, REFILL_V1.features, edges)
    key = ["feature", "kind", "key"]
    merged = merge(by_day).sort(key)
    assert merged.select(key).equals(whole.sort(key).select(key))
    assert merged["value"].to_list() == pytest.approx(whole.sort(key)["value"].to_list())
    # Rows in any order summarize as the contiguous months the materialization wrote.
    shuffled = summarize(
        rows.sample(fraction=1.0, shuffle=True, seed=3),
        REFILL_V1.features,
        edges,
        pl.col("fill_date").dt.strftime("%Y-%m"),
    ).sort(PARTITION, *key)
    stored = by_day.sort(PARTITION, *key)
    assert shuffled.drop("value").equals(stored.drop("value"))
    assert shuffled["value"].to_list() == pytest.approx(stored["value"].to_list())

    _, stats = engine.stats(REFILL_V1)
    named = {s.feature: s for s in stats}
    gap = named["last_gap"]
    assert gap.mean == pytest.approx(rows["last_gap"].mean())
    assert gap.stddev == pytest.approx(rows["last_gap"].std())
    assert gap.null_fraction == pytest.approx(rows["last_gap"].null_count() / rows.height)
    assert sum(gap.bin_counts) == rows.height - rows["last_gap"].null_count()
    assert dict(named["channel"].category_counts) == dict(
        rows["channel"].value_counts().iter_rows()
    )
    built = engine.training_set(REFILL_V1)
    _, baseline = engine.stats(REFILL_V1, built.uri)
    assert {s.feature: s.bin_edges for s in baseline} == {s.feature: s.bin_edges for s in stats}
    with pytest.raises(NotFound):
        engine.stats(REFILL_V1, str(tmp_path / "elsewhere.parquet"))


def _latest(engine: FeatureEngine) -> pl.DataFrame:
    return offline_rows(engine).group_by("rx_id", maintain_order=True).last()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_materialization_serves_the_latest_values_online(
    tmp_path: Path, pharmacy: PharmacyData, backend: str
) -> None:
    with redis_server() as url:
        store = MemoryStore() if backend == "memory" else RedisStore(url)
        engine = engine_for(tmp_path, pharmacy, online=store)
        engine.materialize(REFILL_V1)
        latest = _latest(engine).head(40)
        ids = latest["rx_id"].to_list()
        got = engine.online_features(REFILL_V1, [*ids, "RX-missing"])
        assert got[-1].missing and not got[-1].values
        for value, expected in zip(got, latest.iter_rows(named=True), strict=False):
            assert not value.missing and value.event_time is not None
            assert value.event_time.date() == expected["fill_date"]
            assert value.values == pytest.approx(
                {k: expected[k] for k in REFILL_V1.feature_names}, nan_ok=True
            )
        picked = engine.online_features(REFILL_V1, ids[:2], ["channel", "last_gap"])
        assert [set(v.values) for v in picked] == [{"channel", "last_gap"}] * 2
        store.close()


def test_registry_lists_the_refill_set() -> None:
    registry: FeatureRegistry = builtin_registry()
    assert [s.ref for s in registry.all()] == ["refill:1"]
    assert REFILL_V1.label is not None and REFILL_V1.label.horizon_days == 180


def test_a_restarted_process_refills_the_embedded_online_store(
    tmp_path: Path, pharmacy: PharmacyData
) -> None:
    first = engine_for(tmp_path, pharmacy, online=MemoryStore())
    first.materialize(REFILL_V1)
    ids = _latest(first).head(20)["rx_id"].to_list()
    before = first.online_features(REFILL_V1, ids)
    # A new process: same lake and offline store (up to date), an empty embedded store.
    second = engine_for(tmp_path, pharmacy, online=MemoryStore())
    assert second.materialize(REFILL_V1).partitions_written == 0
    after = second.online_features(REFILL_V1, ids)
    assert not any(v.missing for v in after)
    for got, expected in zip(after, before, strict=True):
        assert got.values == pytest.approx(expected.values, nan_ok=True)
        assert got.event_time == expected.event_time
