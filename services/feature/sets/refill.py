"""The refill product's feature set v1: one row per prescription fill, entity `rx_id`.

Configuration, not platform code: it names the lake datasets the simulator's pharmacy
lands (fills, prescriptions, patients) and the features that predict the next refill.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from feature.definition import Feature, FeatureSet, Join, TimeToNextEvent

RX, PATIENT, DAY = "rx_id", "patient_id", "fill_date"
F64, I64, STR = pl.Float64(), pl.Int64(), pl.String()


def _per_rx(expr: pl.Expr) -> pl.Expr:
    return expr.over(RX)


_gap = pl.col("gap")
# Distinct prescriptions of the patient filled in the 90 days up to this fill: a fill
# keeps its prescription active from its day until the next fill of the same
# prescription or 90 days, whichever comes first; count the intervals covering the day.
_ACTIVE_DAYS = 90
_active_until = pl.min_horizontal(
    _per_rx(pl.col(DAY).shift(-1)), pl.col(DAY) + pl.duration(days=_ACTIVE_DAYS)
)
_active_rx = pl.col(DAY).rank("max").over(PATIENT).cast(I64) - pl.col(
    "active_until"
).sort().search_sorted(pl.col(DAY), side="right").over(PATIENT)

_age = pl.col(DAY).dt.year() - pl.col("birth_year")
_age_band = (
    pl.when(_age.is_null())
    .then(pl.lit(None, STR))
    .when(_age < 30)
    .then(pl.lit("<30"))
    .when(_age < 45)
    .then(pl.lit("30-44"))
    .when(_age < 65)
    .then(pl.lit("45-64"))
    .when(_age < 75)
    .then(pl.lit("65-74"))
    .otherwise(pl.lit("75+"))
)

REFILL_V1 = FeatureSet(
    name="refill",
    version="1",
    entity_key=RX,
    event_time=DAY,
    sources=("fills", "prescriptions", "patients"),
    joins=(
        Join("prescriptions", RX, ("drug_class", "refills_allowed")),
        Join("patients", PATIENT, ("birth_year", "sex", "payer")),
    ),
    row_id="fill_id",
    availability_group=PATIENT,
    derived=(
        Feature("gap", _per_rx(pl.col(DAY).diff().dt.total_days()).cast(F64), F64),
        Feature("lateness", _gap - _per_rx(pl.col("days_supply").shift(1)), F64),
        Feature("active_until", _active_until, pl.Date()),
    ),
    features=(
        Feature("last_gap", _gap, F64, "days between this fill and the one before"),
        Feature(
            "gap_mean_3",
            _per_rx(_gap.rolling_mean(3, min_samples=1)),
            F64,
            "mean of the last 3 gaps",
        ),
        Feature(
            "gap_std_3", _per_rx(_gap.rolling_std(3, min_samples=2)), F64, "std of the last 3 gaps"
        ),
        Feature(
            "gap_mean_6",
            _per_rx(_gap.rolling_mean(6, min_samples=1)),
            F64,
            "mean of the last 6 gaps",
        ),
        Feature(
            "gap_std_6", _per_rx(_gap.rolling_std(6, min_samples=2)), F64, "std of the last 6 gaps"
        ),
        Feature(
            "late_mean_6",
            _per_rx(pl.col("lateness").rolling_mean(6, min_samples=1)),
            F64,
            "early (<0) or late (>0) tendency: mean of gap minus the previous days supply",
        ),
        Feature("days_supply", pl.col("days_supply"), I64, "days supply of this fill"),
        Feature("quantity", pl.col("quantity"), I64, "quantity of this fill"),
        Feature(
            "pdc_180d",
            _per_rx(pl.col("days_supply").rolling_sum_by(DAY, window_size="180d"))
            .truediv(180)
            .clip(upper_bound=1.0),
            F64,
            "proportion of the last 180 days covered by days supplied (capped at 1)",
            timedelta(days=180),
        ),
        Feature(
            "fills_365d",
            _per_rx(
                pl.col("fill_number")
                .is_not_null()
                .cast(I64)
                .rolling_sum_by(DAY, window_size="365d")
            ),
            I64,
            "fills in the last 365 days",
            timedelta(days=365),
        ),
        Feature(
            "days_since_first",
            (pl.col(DAY) - _per_rx(pl.col(DAY).min())).dt.total_days(),
            I64,
            "days since the prescription's first fill",
        ),
        Feature("fill_number", pl.col("fill_number"), I64, "0 for the first fill"),
        Feature(
            "refills_left",
            pl.col("refills_allowed") - pl.col("fill_number"),
            I64,
            "refills the prescription still allows",
        ),
        Feature("active_rx_count", _active_rx, I64, "patient's prescriptions filled in 90 days"),
        Feature("channel", pl.col("channel"), STR, "retail or mail"),
        Feature("copay", pl.col("copay"), F64, "copay of this fill"),
        Feature("drug_class", pl.col("drug_class"), STR, "drug class of the prescription"),
        Feature("payer", pl.col("payer"), STR, "patient's payer type"),
        Feature("sex", pl.col("sex"), STR, "patient's sex"),
        Feature("age_band", _age_band, STR, "patient's age band at the fill"),
    ),
    label=TimeToNextEvent("days_to_next_fill", horizon_days=180),
    description="Next-refill features per prescription fill (simulator pharmacy datasets).",
)
