"""The refill training set, row by row, against a slow reference written independently
here: plain Python loops over a small simulated pharmacy (with same-day duplicate fills
added), no polars expressions, no shared code with the feature set's definition."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from feature.engine import FeatureEngine
from feature.online.memory import MemoryStore
from feature.sets import builtin_registry
from feature.testing import small_pharmacy, write_lake
from wavepod.lake import DirectoryLake

Row = dict[str, Any]
HORIZON = 180


def _mean(values: list[float | None], need: int = 1) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if len(present) >= need else None


def _std(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.stdev(present) if len(present) >= 2 else None


def _age_band(age: int) -> str:
    for upper, band in ((30, "<30"), (45, "30-44"), (65, "45-64"), (75, "65-74")):
        if age < upper:
            return band
    return "75+"


def reference(fills: list[Row], prescriptions: list[Row], patients: list[Row]) -> list[Row]:
    rx_info = {p["rx_id"]: p for p in prescriptions}
    patient_info = {p["patient_id"]: p for p in patients}
    by_rx: dict[str, list[Row]] = defaultdict(list)
    by_patient: dict[str, list[Row]] = defaultdict(list)
    for fill in fills:
        by_rx[fill["rx_id"]].append(fill)
        by_patient[fill["patient_id"]].append(fill)
    data_end = max(f["fill_date"] for f in fills)

    def features(history: list[Row]) -> Row:
        """Features as of the last row of `history` (one prescription, in order)."""
        i = len(history) - 1
        now = history[i]
        gaps: list[float | None] = [None] + [
            float((history[k]["fill_date"] - history[k - 1]["fill_date"]).days)
            for k in range(1, i + 1)
        ]
        lateness: list[float | None] = [None] + [
            float(history[k]["fill_date"].toordinal() - history[k - 1]["fill_date"].toordinal())
            - history[k - 1]["days_supply"]
            for k in range(1, i + 1)
        ]
        day = now["fill_date"]
        recent = [
            f for f in by_rx[now["rx_id"]] if day - timedelta(days=180) < f["fill_date"] <= day
        ]
        year = [f for f in by_rx[now["rx_id"]] if day - timedelta(days=365) < f["fill_date"] <= day]
        active = {
            f["rx_id"]
            for f in by_patient[now["patient_id"]]
            if day - timedelta(days=90) < f["fill_date"] <= day
        }
        rx, patient = rx_info[now["rx_id"]], patient_info[now["patient_id"]]
        return {
            "features_as_of": day,
            "last_gap": gaps[i],
            "gap_mean_3": _mean(gaps[max(0, i - 2) : i + 1]),
            "gap_std_3": _std(gaps[max(0, i - 2) : i + 1]),
            "gap_mean_6": _mean(gaps[max(0, i - 5) : i + 1]),
            "gap_std_6": _std(gaps[max(0, i - 5) : i + 1]),
            "late_mean_6": _mean(lateness[max(0, i - 5) : i + 1]),
            "days_supply": now["days_supply"],
            "quantity": now["quantity"],
            "pdc_180d": min(1.0, sum(f["days_supply"] for f in recent) / 180),
            "fills_365d": len(year),
            "days_since_first": (day - min(f["fill_date"] for f in by_rx[now["rx_id"]])).days,
            "fill_number": now["fill_number"],
            "refills_left": rx["refills_allowed"] - now["fill_number"],
            "active_rx_count": len(active),
            "channel": now["channel"],
            "copay": now["copay"],
            "drug_class": rx["drug_class"],
            "payer": patient["payer"],
            "sex": patient["sex"],
            "age_band": _age_band(day.year - patient["birth_year"]),
            "has_history": True,
        }

    out = []
    for rx_id, rx_fills in by_rx.items():
        ordered = sorted(rx_fills, key=lambda f: (f["fill_date"], f["fill_id"]))
        days = sorted({f["fill_date"] for f in ordered})
        for n, day in enumerate(days):
            label_time = day + timedelta(days=1)
            following = days[n + 1] if n + 1 < len(days) else None
            gap = (following - day).days if following else None
            observed = gap is not None and gap <= HORIZON
            if observed:
                reason = None
            elif following is not None or (data_end - day).days >= HORIZON:
                reason = "no_next_event_within_horizon"
            else:
                reason = "data_ends_before_horizon"
            known = [f for f in ordered if f["fill_date"] < label_time]
            out.append(
                {
                    "rx_id": rx_id,
                    "fill_date": day,
                    "label_time": label_time,
                    "days_to_next_fill": float(gap) if gap is not None and observed else None,
                    "censored": not observed,
                    "censor_reason": reason,
                    **features(known),
                }
            )
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
    return a == b


def test_refill_training_set_matches_the_reference_row_by_row(tmp_path: Path) -> None:
    data = small_pharmacy()
    # Adversarial: fills duplicated on the same day (a correction, a second dispense).
    extra = (
        data.fills.filter(pl.col("fill_number") == 2)
        .head(25)
        .with_columns(
            pl.format("{}-dup", pl.col("fill_id")).alias("fill_id"),
            (pl.col("quantity") + 1).alias("quantity"),
        )
    )
    fills = pl.concat([data.fills, extra])
    write_lake(tmp_path / "lake", data.__class__(data.patients, data.prescriptions, fills))

    registry = builtin_registry()
    refill = registry.get("refill", "1")
    engine = FeatureEngine(
        registry, DirectoryLake(tmp_path / "lake"), tmp_path / "store", MemoryStore()
    )
    built = engine.training_set(refill)
    got = pl.read_parquet(built.uri).sort("rx_id", "label_time").to_dicts()

    expected = sorted(
        reference(fills.to_dicts(), data.prescriptions.to_dicts(), data.patients.to_dicts()),
        key=lambda r: (r["rx_id"], r["label_time"]),
    )
    assert len(got) == len(expected) == built.rows
    assert sum(r["censored"] for r in expected) > 0 and len(extra) == 25
    columns = list(expected[0])
    assert set(columns) <= set(got[0])
    for mine, theirs in zip(got, expected, strict=True):
        wrong = {c: (mine[c], theirs[c]) for c in columns if not _same(mine[c], theirs[c])}
        assert not wrong, (theirs["rx_id"], theirs["label_time"], wrong)


@pytest.mark.parametrize("day", [date(2023, 6, 1)])
def test_reference_counts_active_prescriptions_across_the_patient(day: date) -> None:
    """The reference itself, on a hand-made case: two prescriptions, one lapsed."""
    fills = [
        {
            "fill_id": "a1",
            "rx_id": "A",
            "patient_id": "P",
            "fill_date": day,
            "fill_number": 0,
            "days_supply": 30,
            "quantity": 30,
            "channel": "retail",
            "copay": 5.0,
        },
        {
            "fill_id": "b1",
            "rx_id": "B",
            "patient_id": "P",
            "fill_date": day - timedelta(days=100),
            "fill_number": 0,
            "days_supply": 30,
            "quantity": 30,
            "channel": "mail",
            "copay": 1.0,
        },
        {
            "fill_id": "b2",
            "rx_id": "B",
            "patient_id": "P",
            "fill_date": day - timedelta(days=20),
            "fill_number": 1,
            "days_supply": 30,
            "quantity": 30,
            "channel": "mail",
            "copay": 1.0,
        },
    ]
    rxs = [{"rx_id": r, "drug_class": "statin", "refills_allowed": 3} for r in "AB"]
    patients = [{"patient_id": "P", "birth_year": 1960, "payer": "cash", "sex": "F"}]
    rows = {(r["rx_id"], r["fill_date"]): r for r in reference(fills, rxs, patients)}
    assert rows[("A", day)]["active_rx_count"] == 2
    assert rows[("B", day - timedelta(days=100))]["active_rx_count"] == 1
    assert rows[("B", day - timedelta(days=20))]["last_gap"] == 80.0
    assert rows[("B", day - timedelta(days=100))]["days_to_next_fill"] == 80.0
