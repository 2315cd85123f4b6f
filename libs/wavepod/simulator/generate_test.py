from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from wavepod.simulator.config import (
    InjectableDrift,
    MailShipsEarlier,
    PayerPolicyChange,
    PharmacyOutage,
    PopulationShift,
    SimulationConfig,
)
from wavepod.simulator.generate import PharmacyData, simulate
from wavepod.simulator.publish import publish_all

SMALL = SimulationConfig(patients=3_000, seed=11)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return simulate(SMALL)


def test_same_seed_same_data(data) -> None:  # type: ignore[no-untyped-def]
    again = simulate(SMALL)
    assert data.fills.equals(again.fills)
    assert not data.fills.equals(simulate(SimulationConfig(patients=3_000, seed=12)).fills)


def test_fills_reference_prescriptions_and_patients(data) -> None:  # type: ignore[no-untyped-def]
    assert data.fills["rx_id"].is_in(data.prescriptions["rx_id"].implode()).all()
    assert data.prescriptions["patient_id"].is_in(data.patients["patient_id"].implode()).all()
    assert data.fills["fill_id"].n_unique() == data.fills.height


def test_labels_are_the_next_fill_of_the_same_prescription(data) -> None:  # type: ignore[no-untyped-def]
    fills = data.fills.sort("rx_id", "fill_number")
    expected = fills.select(pl.col("fill_date").shift(-1).over("rx_id")).to_series()
    labelled = ~fills["censored"]
    assert (fills["next_fill_date"].filter(labelled) == expected.filter(labelled)).all()
    assert fills["next_fill_date"].filter(~labelled).is_null().all()
    assert 0.05 < fills["censored"].mean() < 0.5


def test_behaviour_has_signal(data) -> None:  # type: ignore[no-untyped-def]
    gaps = data.fills.filter(~pl.col("censored")).with_columns(
        lateness=(pl.col("next_fill_date") - pl.col("fill_date")).dt.total_days()
        - pl.col("days_supply")
    )
    by_channel = {
        r["channel"]: r
        for r in gaps.group_by("channel")
        .agg(pl.col("lateness").std().alias("sd"), pl.col("lateness").mean().alias("mean"))
        .to_dicts()
    }
    # Mail order auto-refills before run-out and is far more regular than retail.
    assert by_channel["mail"]["mean"] < 0 < by_channel["retail"]["mean"]
    assert by_channel["mail"]["sd"] < by_channel["retail"]["sd"] / 2
    # Retail refills never land on a Sunday (the first fill of a prescription may).
    refills = data.fills.filter((pl.col("channel") == "retail") & (pl.col("fill_number") > 0))
    assert (refills["fill_date"].dt.weekday() != 7).all()
    # New patients keep arriving.
    assert data.patients["first_seen"].n_unique() > 100


def test_drift_knobs_change_the_data() -> None:
    policy = PayerPolicyChange(date(2024, 1, 1), payer="medicare", days_supply=90)
    outage = PharmacyOutage(date(2024, 6, 1), date(2024, 6, 15))
    drifted = simulate(
        SimulationConfig(
            patients=3_000, seed=11, payer_policy_change=policy, pharmacy_outage=outage
        )
    )
    patients = drifted.patients.select("patient_id", "payer")
    fills = drifted.fills.join(patients, on="patient_id")
    after = fills.filter(
        (pl.col("payer") == "medicare")
        & (pl.col("fill_date") >= policy.effective)
        & (pl.col("fill_number") > 0)
    )
    assert after.height > 0 and (after["days_supply"] == 90).all()
    in_outage = fills.filter(
        (pl.col("channel") == "retail")
        & (pl.col("fill_number") > 0)
        & pl.col("fill_date").is_between(outage.start, outage.end, closed="left")
    )
    assert in_outage.height == 0


def test_mail_ships_earlier_moves_only_mail_refills_due_after_the_change() -> None:
    config = SimulationConfig(patients=1_000, seed=11, start=date(2023, 1, 1), end=date(2024, 6, 1))
    knob = MailShipsEarlier(date(2023, 9, 1), days=12)
    plain, drifted = simulate(config), simulate(replace(config, mail_ships_earlier=knob))

    def lateness(data: PharmacyData) -> pl.DataFrame:
        return data.fills.filter(~pl.col("censored")).select(
            "rx_id",
            "fill_number",
            "channel",
            (pl.col("fill_date") + pl.duration(days=pl.col("days_supply"))).alias("due"),
            (
                (pl.col("next_fill_date") - pl.col("fill_date")).dt.total_days()
                - pl.col("days_supply")
            ).alias("late"),
        )

    # The knob draws no random numbers: the same refill, shifted or not.
    both = lateness(plain).join(lateness(drifted), on=["rx_id", "fill_number"], suffix="_d")
    shift = both["late_d"] - both["late"]
    moved = (both["channel"] == "mail") & (both["due_d"] >= knob.effective)
    assert moved.sum() > 100
    assert (shift.filter(moved) == -knob.days).all()
    assert (shift.filter(~moved) == 0).all()


def test_publishes_sql_csv_drops_and_fills(data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = publish_all(data, tmp_path)
    with sqlite3.connect(paths["patients"]) as db:
        assert db.execute("select count(*) from patients").fetchone()[0] == data.patients.height
    drops = sorted(paths["prescriptions"].glob("prescriptions_*.csv"))
    assert len(drops) > 12
    assert sum(pl.read_csv(p).height for p in drops) == data.prescriptions.height
    fills = pl.read_csv(paths["fills"])
    assert fills.height == data.fills.height
    assert "next_fill_date" not in fills.columns  # the label arrives later, as feedback
    assert pl.read_parquet(paths["feedback"]).height == data.fills.height


def test_invalid_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="patients"):
        SimulationConfig(patients=0)


def test_population_shift_and_injectable_drift() -> None:
    effective = date(2024, 1, 1)
    base = simulate(SimulationConfig(patients=4_000, seed=21))
    drifted = simulate(
        SimulationConfig(
            patients=4_000,
            seed=21,
            population_shift=PopulationShift(effective, age_shift_years=-20, medicaid_share=0.6),
            injectable_drift=InjectableDrift(effective, extra_glp1_share=0.3),
        )
    )

    def late_arrivals(data: PharmacyData, column: str) -> pl.Series:
        return data.patients.filter(pl.col("first_seen") >= effective)[column]

    def mean(series: pl.Series) -> float:
        return float(series.cast(pl.Float64).mean())  # type: ignore[arg-type]

    assert mean(late_arrivals(drifted, "birth_year")) > mean(late_arrivals(base, "birth_year")) + 10
    assert mean(late_arrivals(drifted, "payer") == "medicaid") > 0.5

    def glp1_share(data: PharmacyData) -> float:
        recent = data.prescriptions.filter(pl.col("start_date") >= effective)
        return mean(recent["drug_class"] == "glp1")

    assert glp1_share(drifted) > glp1_share(base) + 0.2
