"""The refill product's datasets as ingest contracts: configuration, not platform code."""

from __future__ import annotations

from wavepod.ingest.v1 import ingest_pb2

T = ingest_pb2


def _col(name: str, kind: int, nullable: bool = False, pii: bool = False) -> ingest_pb2.Column:
    return ingest_pb2.Column(name=name, type=kind, nullable=nullable, pii=pii)  # type: ignore[arg-type]


def _rule(rule_id: str, kind: str, on: str = "", **params: str) -> ingest_pb2.QualityRule:
    return ingest_pb2.QualityRule(id=rule_id, kind=kind, column=on, params=params)


PATIENTS = ingest_pb2.Schema(
    dataset="patients",
    version="1.0",
    columns=[
        _col("patient_id", T.COLUMN_TYPE_STRING, pii=True),
        _col("birth_year", T.COLUMN_TYPE_INT64),
        _col("sex", T.COLUMN_TYPE_STRING),
        _col("payer", T.COLUMN_TYPE_STRING),
        _col("region", T.COLUMN_TYPE_STRING, nullable=True),
        _col("first_seen", T.COLUMN_TYPE_DATE),
    ],
    primary_key=["patient_id"],
    event_time_column="first_seen",
    rules=[
        _rule("birth_year_plausible", "range", "birth_year", min="1900", max="2025"),
        _rule("sex_known", "allowed_values", "sex", values="F,M,U"),
        _rule("payer_known", "allowed_values", "payer", values="commercial,medicare,medicaid,cash"),
        _rule("patient_unique", "unique"),
    ],
    max_bad_row_ratio=0.05,
)

PRESCRIPTIONS = ingest_pb2.Schema(
    dataset="prescriptions",
    version="1.0",
    columns=[
        _col("rx_id", T.COLUMN_TYPE_STRING),
        _col("patient_id", T.COLUMN_TYPE_STRING, pii=True),
        _col("drug_class", T.COLUMN_TYPE_STRING),
        _col("days_supply", T.COLUMN_TYPE_INT64),
        _col("refills_allowed", T.COLUMN_TYPE_INT64),
        _col("start_date", T.COLUMN_TYPE_DATE),
        _col("channel", T.COLUMN_TYPE_STRING),
    ],
    primary_key=["rx_id"],
    event_time_column="start_date",
    rules=[
        _rule("days_supply_range", "range", "days_supply", min="1", max="365"),
        _rule("channel_known", "allowed_values", "channel", values="retail,mail"),
        _rule(
            "rx_patient_known", "references", "patient_id", dataset="patients", column="patient_id"
        ),
        _rule("rx_unique", "unique"),
    ],
    max_bad_row_ratio=0.05,
)

FILLS = ingest_pb2.Schema(
    dataset="fills",
    version="1.0",
    columns=[
        _col("fill_id", T.COLUMN_TYPE_STRING),
        _col("rx_id", T.COLUMN_TYPE_STRING),
        _col("patient_id", T.COLUMN_TYPE_STRING, pii=True),
        _col("fill_date", T.COLUMN_TYPE_DATE),
        _col("fill_number", T.COLUMN_TYPE_INT64),
        _col("days_supply", T.COLUMN_TYPE_INT64),
        _col("quantity", T.COLUMN_TYPE_INT64),
        _col("channel", T.COLUMN_TYPE_STRING),
        _col("copay", T.COLUMN_TYPE_FLOAT64, nullable=True),
        _col("pharmacy_id", T.COLUMN_TYPE_STRING),
    ],
    primary_key=["fill_id"],
    event_time_column="fill_date",
    rules=[
        _rule("days_supply_range", "range", "days_supply", min="1", max="365"),
        _rule("copay_non_negative", "range", "copay", min="0"),
        _rule("channel_known", "allowed_values", "channel", values="retail,mail"),
        _rule("fill_rx_known", "references", "rx_id", dataset="prescriptions", column="rx_id"),
        _rule("fill_unique", "unique"),
    ],
    max_bad_row_ratio=0.05,
)

REFILL_SCHEMAS = (PATIENTS, PRESCRIPTIONS, FILLS)
