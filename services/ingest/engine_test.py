from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from ingest import convert
from ingest.catalog import CatalogInUse
from ingest.engine import IngestEngine
from ingest.quality_test import SCHEMA as FILLS
from ingest.schema import Column, ColumnType, DatasetSchema
from ingest.sources import SourceKind, SourceSpec
from ingest.storage import TEMPORARY
from wavepod.duck import AttachError, attach, connect
from wavepod.runtime.status import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from wavepod.simulator.config import SimulationConfig
from wavepod.simulator.generate import simulate
from wavepod.simulator.publish import publish_sql
from wavepod.simulator.schemas import PATIENTS
from wavepod.testing.postgres import postgres_server
from wavepod.testing.s3 import s3_server

RX = DatasetSchema(
    dataset="rx",
    version="1.0",
    columns=(Column("rx_id", ColumnType.STRING, nullable=False),),
    primary_key=("rx_id",),
)
HEADER = "fill_id,rx_id,fill_date,days_supply,channel,mail\n"
PG_PASSWORD = "catalog-secret-pw"
GOOD = [f"F{i},RX1,2024-01-0{1 + i % 3},30,retail,true\n" for i in range(20)]


def with_prescriptions(engine: IngestEngine, tmp_path: Path) -> IngestEngine:
    """`engine` with the fills and rx schemas, and the prescriptions fills refer to."""
    engine.register_schema(RX)
    engine.register_schema(FILLS)
    (tmp_path / "rx.csv").write_text("rx_id\nRX1\nRX2\n")
    engine.run_ingest(
        engine.register_source(SourceSpec("rx", SourceKind.FILES, str(tmp_path / "rx.csv")))
    )
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> IngestEngine:
    return with_prescriptions(IngestEngine(tmp_path / "lake"), tmp_path)


def csv_source(engine: IngestEngine, path: Path, lines: list[str]) -> str:
    path.write_text(HEADER + "".join(lines))
    return engine.register_source(SourceSpec("fills", SourceKind.FILES, str(path)))


def test_lands_partitioned_parquet_and_quarantines_with_reasons(
    engine: IngestEngine, tmp_path: Path
) -> None:
    source = csv_source(
        engine, tmp_path / "fills.csv", [*GOOD, "F99,RX1,2024-01-01,999,retail,true\n"]
    )
    batch, duplicate = engine.run_ingest(source)
    assert not duplicate
    assert (batch.rows_read, batch.rows_landed, batch.rows_quarantined) == (21, 20, 1)
    assert sorted({Path(f).parent.name for f in batch.files}) == [
        "date=2024-01-01",
        "date=2024-01-02",
        "date=2024-01-03",
    ]
    landed = engine.read("fills")
    assert landed.height == 20 and landed.schema["days_supply"] == pl.Int64
    bad = engine.quarantine("fills")
    assert bad.select("fill_id", "_rule", "_row").row(0) == ("F99", "supply_range", 21)
    [record] = [b for b in engine.lineage("fills")]
    assert record.status == "committed" and record.inputs == (str(tmp_path / "fills.csv"),)


def test_reingesting_the_same_content_lands_nothing_twice(
    engine: IngestEngine, tmp_path: Path
) -> None:
    source = csv_source(engine, tmp_path / "fills.csv", GOOD)
    first, _ = engine.run_ingest(source)
    again, duplicate = engine.run_ingest(source)
    assert duplicate and again.batch_id == first.batch_id
    assert engine.read("fills").height == 20 and len(engine.lineage("fills")) == 1
    # A later drop that repeats some rows lands only the new ones.
    overlap = csv_source(
        engine, tmp_path / "fills2.csv", [*GOOD[:5], "F50,RX2,2024-01-09,30,mail,false\n"]
    )
    batch, _ = engine.run_ingest(overlap)
    assert (batch.rows_landed, batch.rows_duplicate) == (1, 5)
    assert engine.read("fills").height == 21


def test_a_batch_reads_only_the_keys_and_references_committed_since_the_last(
    engine: IngestEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Landed keys and referenced values are read once, not from the whole lake for
    every batch (a stream's micro-batches would slow down as the lake grows)."""
    scanned: list[list[str]] = []
    scan = engine.lake.scan

    def recording(files: Iterable[str]) -> pl.LazyFrame | None:
        scanned.append(sorted(files))
        return scan(scanned[-1])

    monkeypatch.setattr(engine.lake, "scan", recording)
    first, _ = engine.run_ingest(csv_source(engine, tmp_path / "a.csv", GOOD))
    second, _ = engine.run_ingest(
        csv_source(engine, tmp_path / "b.csv", [*GOOD[:2], "F40,RX2,2024-02-01,30,mail,true\n"])
    )
    assert (second.rows_landed, second.rows_duplicate) == (1, 2)
    scanned.clear()
    third, _ = engine.run_ingest(
        csv_source(engine, tmp_path / "c.csv", [GOOD[3], "F40,RX2,2024-02-01,30,mail,true\n"])
    )
    assert (third.rows_landed, third.rows_duplicate) == (0, 2)
    assert scanned == [sorted(second.files)]  # not the first batch's, nor the rx dataset
    assert engine.read("fills").height == first.rows_landed + 1


def test_past_its_memory_budget_a_batch_reads_the_keys_from_the_lake_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = with_prescriptions(IngestEngine(tmp_path / "lake", kept_values_max_bytes=0), tmp_path)
    scanned: list[str] = []
    scan = engine.lake.scan

    def recording(files: Iterable[str]) -> pl.LazyFrame | None:
        scanned.extend(files)
        return scan(list(files))

    monkeypatch.setattr(engine.lake, "scan", recording)
    first, _ = engine.run_ingest(csv_source(engine, tmp_path / "a.csv", GOOD))
    engine.run_ingest(csv_source(engine, tmp_path / "b.csv", ["F40,RX2,2024-02-01,30,mail,\n"]))
    scanned.clear()
    third, _ = engine.run_ingest(csv_source(engine, tmp_path / "c.csv", [GOOD[3], GOOD[4]]))
    assert (third.rows_landed, third.rows_duplicate) == (0, 2)
    assert set(first.files) <= set(scanned)  # the whole lake again, not only what is new
    assert "kept values over budget" in caplog.text


def test_lineage_comes_in_pages_that_batches_landing_meanwhile_do_not_shift(
    engine: IngestEngine, tmp_path: Path
) -> None:
    for i in range(5):
        engine.run_ingest(
            csv_source(engine, tmp_path / f"{i}.csv", [f"F{i},RX1,2024-01-0{1 + i},30,mail,\n"])
        )
    first = engine.lineage_page("fills", 2)
    assert (len(first.batches), first.total) == (2, 5) and first.next_token
    engine.run_ingest(csv_source(engine, tmp_path / "late.csv", ["F9,RX1,2024-01-09,30,mail,\n"]))
    seen, token = list(first.batches), first.next_token
    while token:
        page = engine.lineage_page("fills", 2, token)
        seen += page.batches
        token = page.next_token
    assert [b.batch_id for b in seen] == [b.batch_id for b in engine.lineage("fills")]
    assert len(seen) == 6 and page.total == 6

    with pytest.raises(InvalidArgument) as bad:
        engine.lineage_page("fills", 2, "not-a-token")
    assert [v.field for v in bad.value.violations] == ["page.page_token"]
    with pytest.raises(InvalidArgument, match="'fills', not 'rx'"):
        engine.lineage_page("rx", 2, first.next_token)
    with pytest.raises(InvalidArgument) as negative:
        engine.lineage_page("fills", -1)
    assert [v.field for v in negative.value.violations] == ["page.page_size"]


def test_a_crash_between_write_and_commit_leaves_the_lake_consistent(tmp_path: Path) -> None:
    lake = tmp_path / "lake"

    def crash() -> None:
        raise SystemExit("killed after writing files, before the catalog commit")

    crashing = IngestEngine(lake, before_commit=crash)
    crashing.register_schema(RX)
    (tmp_path / "rx.csv").write_text("rx_id\nRX1\n")
    source = crashing.register_source(SourceSpec("rx", SourceKind.FILES, str(tmp_path / "rx.csv")))
    with pytest.raises(SystemExit):
        crashing.run_ingest(source)
    assert list((lake / "rx").rglob("*.parquet")), "the files were written"
    assert crashing.read("rx").height == 0, "but no reader sees them"
    crashing.close()

    # A process killed while writing leaves its staged files behind, too.
    leftover = lake / "rx" / "date=2024-01-01" / f".part-killed.parquet{TEMPORARY}"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")

    restarted = IngestEngine(lake)
    assert not list((lake / "rx").rglob("*.parquet")), "orphans removed on start"
    assert not leftover.exists(), "and what was left staged"
    batch, duplicate = restarted.run_ingest(source)
    assert not duplicate and batch.rows_landed == 1 and restarted.read("rx").height == 1


def test_a_second_ingest_process_on_the_same_lake_is_refused(tmp_path: Path) -> None:
    engine = IngestEngine(tmp_path / "lake")
    second = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from ingest.engine import IngestEngine; IngestEngine({str(tmp_path / 'lake')!r})",
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode != 0
    assert "another ingest process holds the catalog" in second.stderr, second.stderr[-2000:]
    engine.close()


def test_files_are_staged_beside_their_names_so_publishing_is_a_rename(
    engine: IngestEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staged in the system's temporary directory, a file published into a lake on
    # another filesystem (a container's /tmp beside its lake volume) would be copied;
    # staged in a directory of its own, its day's directory would be made twice.
    lake = tmp_path / "lake"
    renamed: list[tuple[Path, Path]] = []
    rename = os.replace

    def recording(src: str | Path, dst: str | Path) -> None:
        renamed.append((Path(src), Path(dst)))
        rename(src, dst)

    monkeypatch.setattr(os, "replace", recording)
    monkeypatch.setattr(shutil, "copyfile", None)  # a copy would fail the test
    batch, _ = engine.run_ingest(csv_source(engine, tmp_path / "fills.csv", GOOD))
    assert {dst.relative_to(lake).as_posix() for _, dst in renamed} == set(batch.files)
    assert all(src.parent == dst.parent for src, dst in renamed), renamed
    assert all(src.name.startswith(".") for src, _ in renamed), "staged names are hidden"
    assert not list(lake.rglob(f"*{TEMPORARY}")), "nothing stays staged"


def test_too_many_bad_rows_fail_the_batch_and_land_nothing(
    engine: IngestEngine, tmp_path: Path
) -> None:
    bad = [f"B{i},RX1,2024-01-01,0,retail,true\n" for i in range(5)]
    source = csv_source(engine, tmp_path / "fills.csv", [*GOOD[:5], *bad])
    with pytest.raises(FailedPrecondition, match=r"5 of 10 rows \(50.0%\).*supply_range \(5\)"):
        engine.run_ingest(source)
    assert engine.read("fills").height == 0
    assert [b.status for b in engine.lineage("fills")] == ["failed"]


def test_bad_input_names_what_is_wrong(engine: IngestEngine, tmp_path: Path) -> None:
    (tmp_path / "ragged.csv").write_text(HEADER + 'F1,RX1,"2024-01-01,30\n')
    ragged = engine.register_source(
        SourceSpec("fills", SourceKind.FILES, str(tmp_path / "ragged.csv"))
    )
    with pytest.raises(InvalidArgument, match="ragged.csv: malformed input: line 2: "):
        engine.run_ingest(ragged)
    (tmp_path / "wide.csv").write_text(
        HEADER + GOOD[0] + "F2,RX1,2024-01-01,30,retail,true,extra\n"
    )
    wide = engine.register_source(SourceSpec("fills", SourceKind.FILES, str(tmp_path / "wide.csv")))
    with pytest.raises(InvalidArgument, match="line 3: 7 fields where the header has 6"):
        engine.run_ingest(wide)
    with pytest.raises(NotFound, match="'nope'"):
        engine.register_source(SourceSpec("nope", SourceKind.FILES, "x.csv"))
    with pytest.raises(InvalidArgument) as error:
        engine.register_source(SourceSpec("fills", SourceKind.SQL, ""))
    assert [v.field for v in error.value.violations] == ["source.location", "source.query"]
    missing = engine.register_source(
        SourceSpec("fills", SourceKind.SQL, str(tmp_path / "none.db"), "select 1")
    )
    with pytest.raises(Unavailable, match="does not exist"):
        engine.run_ingest(missing)


def _patients_engine(tmp_path: Path) -> tuple[IngestEngine, pl.DataFrame]:
    engine = IngestEngine(tmp_path / "lake", pii_key=b"test-key")
    engine.register_schema(convert.schema_from_proto(PATIENTS))
    data = simulate(
        SimulationConfig(patients=500, seed=3, start=date(2024, 1, 1), end=date(2024, 7, 1))
    )
    return engine, data.patients


def test_sql_source_sqlite(tmp_path: Path) -> None:
    engine, patients = _patients_engine(tmp_path)
    publish_sql(patients, str(tmp_path / "patients.db"))
    source = engine.register_source(
        SourceSpec(
            "patients", SourceKind.SQL, str(tmp_path / "patients.db"), "SELECT * FROM patients"
        )
    )
    batch, _ = engine.run_ingest(source)
    assert batch.rows_landed == patients.height == engine.read("patients").height


def test_sql_source_postgres_with_password_from_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, patients = _patients_engine(tmp_path)
    with postgres_server(password=PG_PASSWORD) as url:
        publish_sql(patients, url, password=PG_PASSWORD)
        monkeypatch.setenv("PG_PASSWORD", PG_PASSWORD)
        source = engine.register_source(
            SourceSpec(
                "patients",
                SourceKind.SQL,
                url,
                "SELECT * FROM patients WHERE payer <> 'cash'",
                secret_ref="env:PG_PASSWORD",
            )
        )
        batch, _ = engine.run_ingest(source)
        assert batch.rows_landed == patients.filter(pl.col("payer") != "cash").height
        assert all(PG_PASSWORD not in i for i in batch.inputs)
        # The server really asks for it: a wrong one is refused, and not echoed.
        monkeypatch.setenv("PG_PASSWORD", "wrong-password")
        with pytest.raises(Unavailable, match="cannot reach the postgres database") as wrong:
            engine.run_ingest(source)
        assert "password" in str(wrong.value) and "wrong-password" not in str(wrong.value)
    down = engine.register_source(SourceSpec("patients", SourceKind.SQL, url, "SELECT 1"))
    with pytest.raises(Unavailable, match="cannot reach the postgres database"):
        engine.run_ingest(down)


def _catalog_in_postgres(
    lake: Path, url: str, before_commit: Callable[[], None] | None = None
) -> IngestEngine:
    return IngestEngine(
        lake, catalog=url, catalog_password=PG_PASSWORD, before_commit=before_commit
    )


def test_the_catalog_can_live_in_postgresql(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with postgres_server(password=PG_PASSWORD) as url:

        engine = with_prescriptions(_catalog_in_postgres(lake, url), tmp_path)
        first, _ = engine.run_ingest(csv_source(engine, tmp_path / "fills.csv", GOOD))
        assert engine.catalog.location == url  # no password in it
        assert not (lake / "_catalog.duckdb").exists(), "nothing but data in the lake"
        # One ingest per catalog: a second would delete the first's unfinished files as
        # orphans, and could land the same keys twice.
        with pytest.raises(CatalogInUse, match="another ingest process holds the catalog"):
            _catalog_in_postgres(lake, url)
        engine.close()

        def crash() -> None:
            raise SystemExit("killed after writing files, before the catalog commit")

        crashing = _catalog_in_postgres(lake, url, before_commit=crash)
        late = csv_source(crashing, tmp_path / "late.csv", ["F90,RX2,2024-02-01,30,mail,false\n"])
        with pytest.raises(SystemExit):
            crashing.run_ingest(late)
        crashing.close()

        # Another process, the same catalog: what was committed, exactly once, and the
        # crashed batch's files gone.
        restarted = _catalog_in_postgres(lake, url)
        again, duplicate = restarted.run_ingest(csv_source(restarted, tmp_path / "fills.csv", GOOD))
        assert duplicate and again.batch_id == first.batch_id
        assert restarted.read("fills").height == 20
        assert not list((lake / "fills").glob("date=2024-02-01/*.parquet"))
        assert [b.status for b in restarted.lineage("fills")] == ["committed"]  # no half batch
        # The same SQL pages and finds the kept keys' batches in PostgreSQL.
        second, _ = restarted.run_ingest(late)
        assert (second.rows_landed, restarted.catalog.committed_ids("fills")) == (
            1,
            {first.batch_id, second.batch_id},
        )
        page = restarted.lineage_page("fills", 1)
        rest = restarted.lineage_page("fills", 1, page.next_token)
        assert [b.batch_id for b in page.batches + rest.batches] == [
            first.batch_id,
            second.batch_id,
        ]
        assert (rest.next_token, rest.total) == ("", 2)
        restarted.close()
    with pytest.raises(AttachError, match="cannot reach the postgres database") as down:
        _catalog_in_postgres(lake, url)
    assert PG_PASSWORD not in str(down.value)


def _end_the_catalogs_session(url: str) -> None:
    """What a PostgreSQL restart or a dropped connection does to the ingest holding the
    catalog: its session, and with it the session's advisory lock, is gone."""
    admin = connect(extensions=["postgres_scanner"])
    attach(admin, url, "admin", password=PG_PASSWORD)
    ended = admin.execute(
        "SELECT * FROM postgres_query('admin', 'SELECT count(pg_terminate_backend(pid))"
        " FROM pg_locks WHERE locktype = ''advisory''')"
    ).fetchall()
    admin.close()
    assert ended == [(1,)]


def test_a_lost_catalog_session_never_lets_two_processes_land(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with postgres_server(password=PG_PASSWORD) as url:

        def landed(engine: IngestEngine) -> int:
            return engine.read("fills").height

        first = with_prescriptions(_catalog_in_postgres(lake, url), tmp_path)
        first.run_ingest(csv_source(first, tmp_path / "a.csv", GOOD[:5]))
        _end_the_catalogs_session(url)
        # DuckDB reconnects without the lock, so a second process can now take the
        # catalog; the first must not land beside it.
        second = _catalog_in_postgres(lake, url)
        with pytest.raises(FailedPrecondition, match="another ingest process holds"):
            first.run_ingest(csv_source(first, tmp_path / "b.csv", GOOD[5:10]))
        assert landed(second) == 5
        second.close()
        # Once the other has gone, the first takes the catalog back and lands again.
        first.run_ingest(csv_source(first, tmp_path / "b.csv", GOOD[5:10]))
        assert landed(first) == 10
        first.close()

        # The session ends in the middle of a batch: not committed, and run again it
        # lands exactly once.
        flaky = _catalog_in_postgres(
            lake, url, before_commit=lambda: _end_the_catalogs_session(url)
        )
        late = csv_source(flaky, tmp_path / "c.csv", GOOD[10:15])
        with pytest.raises(Unavailable, match="was not committed: run it again"):
            flaky.run_ingest(late)
        assert landed(flaky) == 10
        flaky.close()
        again = _catalog_in_postgres(lake, url)
        _, duplicate = again.run_ingest(late)
        assert not duplicate and landed(again) == 15
        _, duplicate = again.run_ingest(late)
        assert duplicate and landed(again) == 15
        again.close()


def test_pii_is_pseudonymized_before_anything_lands(tmp_path: Path) -> None:
    engine, patients = _patients_engine(tmp_path)
    publish_sql(patients, str(tmp_path / "patients.db"))
    source = engine.register_source(
        SourceSpec(
            "patients", SourceKind.SQL, str(tmp_path / "patients.db"), "SELECT * FROM patients"
        )
    )
    engine.run_ingest(source)
    landed = engine.read("patients")["patient_id"]
    raw = set(patients["patient_id"])
    assert landed.n_unique() == len(raw) and not raw & set(landed)
    # No Parquet file in the lake (data or quarantine) holds a raw identifier.
    for path in (tmp_path / "lake").rglob("*.parquet"):
        frame = pl.read_parquet(path)
        for column in frame.columns:
            assert not raw & set(frame[column].cast(pl.String).drop_nulls()), (path, column)

    keyless = IngestEngine(tmp_path / "lake2")
    keyless.register_schema(convert.schema_from_proto(PATIENTS))
    source = keyless.register_source(
        SourceSpec(
            "patients", SourceKind.SQL, str(tmp_path / "patients.db"), "SELECT * FROM patients"
        )
    )
    with pytest.raises(FailedPrecondition, match="PII_KEY_REF"):
        keyless.run_ingest(source)


def test_batch_profiles_show_drift_against_the_previous_batch(
    engine: IngestEngine, tmp_path: Path
) -> None:
    first = csv_source(engine, tmp_path / "a.csv", GOOD)
    engine.run_ingest(first)
    drifted = [
        f"D{i},RX2,2024-02-0{1 + i % 3},90,{'' if i % 2 else 'mail'},false\n" for i in range(20)
    ]
    second = csv_source(
        engine, tmp_path / "b.csv", [*drifted, "D99,RX2,2024-02-01,ninety,mail,true\n"]
    )
    batch, _ = engine.run_ingest(second)

    profile, report = engine.profile("fills", batch.batch_id)
    columns = {c.column: c for c in profile.columns}
    assert profile.rows == 20
    assert columns["days_supply"].mean == 90 and columns["days_supply"].quantiles[2] == 90
    assert columns["channel"].null_fraction_change == pytest.approx(0.5)
    assert columns["days_supply"].type_error_fraction == pytest.approx(1 / 21)
    assert columns["fill_id"].distinct_count == 20
    html = Path(report).read_text()
    assert "Drift against the previous batch" in html and html.count("<img") >= 2

    whole, _ = engine.profile("fills")
    assert whole.rows == 40 and whole.scope == "dataset"
    with pytest.raises(NotFound):
        engine.profile("fills", "no-such-batch")


def test_the_lake_can_live_in_an_s3_compatible_bucket(tmp_path: Path) -> None:
    import boto3

    with s3_server("lake") as endpoint:

        def open_engine() -> IngestEngine:
            return IngestEngine(
                "s3://lake/wavepod",
                catalog=tmp_path / "catalog.duckdb",
                s3_endpoint_url=endpoint,
            )

        engine = with_prescriptions(open_engine(), tmp_path)
        batch, _ = engine.run_ingest(csv_source(engine, tmp_path / "fills.csv", GOOD))
        assert batch.rows_landed == 20 and engine.read("fills").height == 20

        client = boto3.client("s3", endpoint_url=endpoint)
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"]}
        assert {f"wavepod/{f}" for f in batch.files} <= keys
        assert any(k.startswith("wavepod/fills/date=2024-01-01/") for k in keys)

        _, report = engine.profile("fills")
        assert report.startswith("s3://lake/wavepod/_reports/fills/")

        # An uncommitted object (a crash before the commit) is removed on start.
        client.put_object(
            Bucket="lake", Key="wavepod/fills/date=2024-01-01/part-orphan.parquet", Body=b"x"
        )
        engine.close()
        restarted = open_engine()
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"]}
        assert "wavepod/fills/date=2024-01-01/part-orphan.parquet" not in keys
        assert restarted.read("fills").height == 20
