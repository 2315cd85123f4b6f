from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from ingest.convert import schema_from_proto
from ingest.engine import IngestEngine
from ingest.schema import RuleKind
from ingest.sources import RestConnector, SourceKind, SourceSpec
from wavepod.runtime.status import FailedPrecondition, Unavailable
from wavepod.runtime.testing.process import free_port
from wavepod.simulator.config import SimulationConfig
from wavepod.simulator.generate import simulate
from wavepod.simulator.publish import customer_fills
from wavepod.simulator.rest_api import Faults, serve_fills
from wavepod.simulator.schemas import FILLS as FILLS_SCHEMA

TOKEN = "rest-token-value"
FILLS = customer_fills(
    simulate(SimulationConfig(patients=300, seed=9, start=date(2024, 1, 1))).fills
)


def spec(url: str, **options: str) -> SourceSpec:
    return SourceSpec(
        "fills",
        SourceKind.REST,
        url,
        secret_ref="env:FILLS_API_TOKEN",
        options=tuple(sorted({"page_size": "250", **options}.items())),
    )


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILLS_API_TOKEN", TOKEN)


def test_follows_cursors_and_survives_429_and_503() -> None:
    faults = Faults(rate_limited=0.2, unavailable=0.2, retry_after_seconds=0, seed=1)
    with serve_fills(FILLS, TOKEN, faults) as api:
        batch = RestConnector().read(spec(api.url, max_retries="20"))
    assert api.faults_served > 0
    assert batch.frame.height == FILLS.height
    assert sorted(batch.frame["fill_id"]) == sorted(FILLS["fill_id"])
    assert batch.inputs[0].endswith(f"({-(-FILLS.height // 250)} pages)")


def test_waits_at_least_what_retry_after_asks() -> None:
    small = FILLS.head(10)
    with serve_fills(small, TOKEN, Faults(rate_limited=0.5, retry_after_seconds=1, seed=3)) as api:
        started = time.monotonic()
        RestConnector().read(spec(api.url, max_retries="10"))
        elapsed = time.monotonic() - started
    assert api.faults_served >= 1
    assert elapsed >= api.faults_served * 1.0


def test_wrong_credentials_and_unreachable_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        serve_fills(FILLS, "another-token") as api,
        pytest.raises(FailedPrecondition, match="refused the credentials") as error,
    ):
        RestConnector().read(spec(api.url))
    assert TOKEN not in str(error.value)
    with pytest.raises(Unavailable, match="unreachable after 2 tries"):
        RestConnector().read(spec(f"http://127.0.0.1:{free_port()}/v1/fills", max_retries="1"))


def test_rest_fills_land_through_the_engine(tmp_path: Path) -> None:
    engine = IngestEngine(tmp_path / "lake", pii_key=b"k")
    schema = schema_from_proto(FILLS_SCHEMA)
    # Without prescriptions landed the reference rule would quarantine everything.
    without_references = tuple(r for r in schema.rules if r.kind != RuleKind.REFERENCES)
    engine.register_schema(replace(schema, rules=without_references))
    with serve_fills(FILLS, TOKEN, Faults(unavailable=0.1, seed=2)) as api:
        batch, _ = engine.run_ingest(engine.register_source(spec(api.url)))
    assert batch.rows_landed == FILLS.height
    assert engine.read("fills").schema["fill_date"] == pl.Date
