"""A seeded, vectorized simulator of a pharmacy's patients, prescriptions and fills.

Behaviour with signal a model can learn (and a naive `last fill + days supply` misses):
per-patient adherence, regular mail-order auto-refills, later refills at higher copays,
early refills a few days before run-out, no retail fills on Sundays and holidays,
discontinuation (the last fill of a prescription has no next fill: censored), new
patients arriving over time, and the drift events of `SimulationConfig`.

Everything is numpy over (prescription x fill-number) matrices; the only Python loop
runs over fill numbers (at most 13), so 10M fills take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from wavepod.simulator.config import DRUG_CLASSES, PAYERS, REGIONS, SimulationConfig

EPOCH = date(1970, 1, 1)
MAX_FILLS = 13  # a 30-day prescription with 12 refills
MAIL_PHARMACY = 0


def _day(d: date) -> int:
    return (d - EPOCH).days


def _holidays(start_year: int, end_year: int) -> np.ndarray:
    """Fixed-date US holidays plus Thanksgiving (4th Thursday of November)."""
    days = []
    for year in range(start_year, end_year + 1):
        days += [_day(date(year, 1, 1)), _day(date(year, 7, 4)), _day(date(year, 12, 25))]
        nov1 = date(year, 11, 1)
        first_thursday = 1 + (3 - nov1.weekday()) % 7
        days.append(_day(date(year, 11, first_thursday + 21)))
    return np.array(sorted(days), dtype=np.int64)


@dataclass(frozen=True)
class PharmacyData:
    patients: pl.DataFrame
    prescriptions: pl.DataFrame
    # One row per fill; `next_fill_date` is the label (null: censored, no next fill).
    fills: pl.DataFrame


def simulate(config: SimulationConfig) -> PharmacyData:
    rng = np.random.default_rng(config.seed)
    start, end = _day(config.start), _day(config.end)

    # --- patients ---------------------------------------------------------------------
    n = config.patients
    present = rng.random(n) < config.initial_share
    arrival = np.where(present, start, rng.integers(start, end - 60, n))
    age = np.clip(rng.normal(58, 16, n), 18, 95)
    payer = rng.choice(len(PAYERS), n, p=list(config.payer_mix))
    if (shift := config.population_shift) is not None:
        shifted = arrival >= _day(shift.effective)
        age = np.where(shifted, np.clip(age + shift.age_shift_years, 18, 95), age)
        medicaid = PAYERS.index("medicaid")
        payer = np.where(shifted & (rng.random(n) < shift.medicaid_share), medicaid, payer)
    birth_year = (config.start.year - age).astype(np.int32)
    sex = np.where(rng.random(n) < 0.55, "F", "M")
    region = rng.integers(0, len(REGIONS), n)
    # Adherence propensity: older patients and commercial payers adhere more.
    adherence = rng.beta(5, 2, n) + 0.002 * (age - 58) - 0.08 * (payer == PAYERS.index("medicaid"))
    adherence = np.clip(adherence, 0.05, 0.99)
    mail_pref = rng.random(n) < np.where(payer == PAYERS.index("medicare"), 0.35, 0.2)
    home_pharmacy = rng.integers(1, config.pharmacies + 1, n)

    patients = pl.DataFrame(
        {
            "patient_id": np.arange(n, dtype=np.int64),
            "birth_year": birth_year,
            "sex": sex,
            "payer": np.array(PAYERS)[payer],
            "region": np.array(REGIONS)[region],
            "first_seen": arrival.astype("datetime64[D]"),
        }
    ).with_columns(pl.format("P{}", pl.col("patient_id")).alias("patient_id"))

    # --- prescriptions ----------------------------------------------------------------
    per_patient = 1 + rng.poisson(max(config.prescriptions_per_patient - 1, 0), n)
    rx_patient = np.repeat(np.arange(n), per_patient)
    m = rx_patient.size
    classes = list(DRUG_CLASSES)
    shares = np.array([DRUG_CLASSES[c][0] for c in classes])
    drug = rng.choice(len(classes), m, p=shares / shares.sum())
    injectable = np.array([DRUG_CLASSES[c][1] for c in classes])[drug]
    mail = np.where(mail_pref[rx_patient], rng.random(m) < 0.85, rng.random(m) < 0.05)
    days_supply = np.where(
        mail,
        np.where(rng.random(m) < 0.85, 90, 30),
        rng.choice([30, 60, 90], m, p=[0.7, 0.05, 0.25]),
    )
    days_supply = np.where(drug == classes.index("glp1"), 28, days_supply)
    refills_allowed = np.select([days_supply >= 90, days_supply >= 60], [3, 5], 11)
    latest_start = np.maximum(arrival[rx_patient] + 1, end - 30)
    rx_start = np.minimum(arrival[rx_patient] + rng.integers(0, 180, m), latest_start - 1)
    injectable_era = np.zeros(m, dtype=bool)
    if (drift := config.injectable_drift) is not None:
        injectable_era = rx_start >= _day(drift.effective)
        switched = injectable_era & (rng.random(m) < drift.extra_glp1_share)
        drug = np.where(switched, classes.index("glp1"), drug)
        injectable = np.array([DRUG_CLASSES[c][1] for c in classes])[drug]
        days_supply = np.where(switched, 28, days_supply)
        refills_allowed = np.where(switched, 11, refills_allowed)
    payer_rx = payer[rx_patient]
    base_copay = np.select(
        [payer_rx == PAYERS.index(p) for p in PAYERS],
        [
            rng.uniform(10, 40, m),
            rng.uniform(5, 20, m),
            rng.uniform(0, 3, m),
            rng.uniform(30, 120, m),
        ],
    )
    copay_factor = np.where(drug == classes.index("glp1"), 3.0, np.where(injectable, 2.0, 1.0))
    copay = np.round(base_copay * copay_factor * np.maximum(days_supply / 30 * 0.8, 1), 2)

    prescriptions = pl.DataFrame(
        {
            "rx_id": np.arange(m, dtype=np.int64),
            "patient_id": rx_patient,
            "drug_class": np.array(classes)[drug],
            "days_supply": days_supply.astype(np.int32),
            "refills_allowed": refills_allowed.astype(np.int32),
            "start_date": rx_start.astype("datetime64[D]"),
            "channel": np.where(mail, "mail", "retail"),
        }
    ).with_columns(
        pl.format("RX{}", pl.col("rx_id")).alias("rx_id"),
        pl.format("P{}", pl.col("patient_id")).alias("patient_id"),
    )

    # --- fills: one column per fill number -------------------------------------------
    adh = adherence[rx_patient]
    early = rng.random((m, MAX_FILLS)) < 0.35 * adh[:, None]
    late_scale = 1.5 + 28 * (1 - adh) + 0.12 * copay
    lateness = np.where(
        mail[:, None],
        rng.normal(-6, 1.5, (m, MAX_FILLS)),  # auto-refill ships before run-out
        np.where(
            early,
            -rng.integers(0, 6, (m, MAX_FILLS)),  # early refill window
            rng.exponential(late_scale[:, None], (m, MAX_FILLS)),
        ),
    ).round()
    holidays = _holidays(config.start.year, config.end.year + 1)
    policy = config.payer_policy_change
    outage = config.pharmacy_outage

    fill_day = np.empty((m, MAX_FILLS), dtype=np.int64)
    supply = np.empty((m, MAX_FILLS), dtype=np.int64)
    fill_day[:, 0] = rx_start
    for k in range(MAX_FILLS):
        day = fill_day[:, k]
        if k > 0:
            due = fill_day[:, k - 1] + supply[:, k - 1]
            late = lateness[:, k].astype(np.int64)
            if (earlier := config.mail_ships_earlier) is not None:
                late = late - earlier.days * (mail & (due >= _day(earlier.effective)))
            day = due + late
            retail = ~mail
            if outage is not None:
                hit = retail & (day >= _day(outage.start)) & (day < _day(outage.end))
                day = np.where(hit, _day(outage.end) + rng.integers(0, 4, m), day)
            # Retail pharmacies close on Sundays and holidays: the fill happens next day.
            for _ in range(2):
                closed = retail & (((day + 3) % 7 == 6) | np.isin(day, holidays))
                day = day + closed
            fill_day[:, k] = day
        supply[:, k] = days_supply
        if policy is not None:
            forced = (payer_rx == PAYERS.index(policy.payer)) & (day >= _day(policy.effective))
            supply[:, k] = np.where(forced, policy.days_supply, days_supply)

    # Discontinuation: a per-fill hazard, higher for low adherence and injectables.
    hazard = 0.03 + 0.10 * (1 - adh) + 0.04 * injectable
    if config.injectable_drift is not None:  # shortages: injectables stop more often
        hazard = hazard + config.injectable_drift.extra_discontinuation * (
            injectable & injectable_era
        )
    stops_after = rng.geometric(hazard)  # number of fills before stopping
    fills_allowed = np.minimum(refills_allowed + 1, MAX_FILLS)
    count = np.minimum(stops_after, fills_allowed)
    k_index = np.arange(MAX_FILLS)[None, :]
    valid = (k_index < count[:, None]) & (fill_day < end)
    has_next = np.zeros_like(valid)
    has_next[:, :-1] = valid[:, 1:]
    next_day = np.full_like(fill_day, 0)
    next_day[:, :-1] = fill_day[:, 1:]

    rx_idx, k_idx = np.nonzero(valid)
    order = np.lexsort((rx_idx, fill_day[rx_idx, k_idx]))  # by date, then prescription
    rx_idx, k_idx = rx_idx[order], k_idx[order]
    fill_supply = supply[rx_idx, k_idx]
    units_per_day = np.where(injectable[rx_idx], 1 / 7, rng.choice([1, 2], rx_idx.size))
    patient_of_fill = rx_patient[rx_idx]
    fills = pl.DataFrame(
        {
            "fill_id": np.arange(rx_idx.size, dtype=np.int64),
            "rx_id": rx_idx,
            "patient_id": patient_of_fill,
            "fill_date": fill_day[rx_idx, k_idx].astype("datetime64[D]"),
            "fill_number": k_idx.astype(np.int32),
            "days_supply": fill_supply.astype(np.int32),
            "quantity": np.ceil(fill_supply * units_per_day).astype(np.int32),
            "channel": np.where(mail[rx_idx], "mail", "retail"),
            "copay": np.round(copay[rx_idx] * fill_supply / days_supply[rx_idx], 2),
            "pharmacy_id": np.where(mail[rx_idx], MAIL_PHARMACY, home_pharmacy[patient_of_fill]),
            "next_fill_date": np.where(has_next[rx_idx, k_idx], next_day[rx_idx, k_idx], -1).astype(
                "datetime64[D]"
            ),
            "censored": ~has_next[rx_idx, k_idx],
        }
    ).with_columns(
        pl.format("F{}", pl.col("fill_id")).alias("fill_id"),
        pl.format("RX{}", pl.col("rx_id")).alias("rx_id"),
        pl.format("P{}", pl.col("patient_id")).alias("patient_id"),
        pl.format("PH{}", pl.col("pharmacy_id")).alias("pharmacy_id"),
        pl.when(pl.col("censored"))
        .then(None)
        .otherwise(pl.col("next_fill_date"))
        .alias("next_fill_date"),
    )
    return PharmacyData(patients, prescriptions, fills)
