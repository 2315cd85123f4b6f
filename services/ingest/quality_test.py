from __future__ import annotations

import dataclasses
from datetime import datetime

import polars as pl
import pytest

from ingest.quality import validate
from ingest.schema import Column, ColumnType, DatasetSchema, Rule, RuleKind
from wavepod.runtime.status import InvalidArgument

SCHEMA = DatasetSchema(
    dataset="fills",
    version="1.0",
    columns=(
        Column("fill_id", ColumnType.STRING, nullable=False),
        Column("rx_id", ColumnType.STRING, nullable=False),
        Column("fill_date", ColumnType.DATE, nullable=False),
        Column("days_supply", ColumnType.INT64, nullable=False),
        Column("channel", ColumnType.STRING),
        Column("mail", ColumnType.BOOL),
    ),
    primary_key=("fill_id",),
    event_time_column="fill_date",
    rules=(
        Rule("supply_range", RuleKind.RANGE, "days_supply", (("max", "365"), ("min", "1"))),
        Rule("channel_known", RuleKind.ALLOWED_VALUES, "channel", (("values", "retail,mail"),)),
        Rule("rx_known", RuleKind.REFERENCES, "rx_id", (("column", "rx_id"), ("dataset", "rx"))),
        Rule("fresh", RuleKind.FRESHNESS, "fill_date", (("max_age_days", "3650"),)),
        Rule("unique_fill", RuleKind.UNIQUE),
    ),
)
NOW = datetime(2025, 1, 1)
REFS = {("rx", "rx_id"): pl.Series(["RX1", "RX2"])}


def batch(*rows: tuple[str | None, ...]) -> pl.DataFrame:
    names = ["fill_id", "rx_id", "fill_date", "days_supply", "channel", "mail"]
    return pl.DataFrame(
        [dict(zip(names, r, strict=True)) for r in rows], schema={n: pl.String for n in names}
    )


def test_each_rule_quarantines_with_its_id_and_reason() -> None:
    result = validate(
        batch(
            ("F1", "RX1", "2024-01-05", "30", "retail", "true"),  # good
            ("F2", "RX1", "2024-01-05", "thirty", "retail", "false"),  # type
            ("F3", "RX1", None, "30", "retail", None),  # not null
            ("F4", "RX1", "2024-01-05", "400", "retail", None),  # range
            ("F5", "RX1", "2024-01-05", "30", "drone", None),  # allowed values
            ("F6", "RX9", "2024-01-05", "30", "mail", None),  # reference
            ("F7", "RX2", "2001-01-05", "30", "mail", None),  # freshness
            ("F1", "RX2", "2024-02-05", "30", "mail", None),  # duplicate key in batch
            ("F8", "RX2", "2024-02-05", "90", "mail", "maybe"),  # bool type
        ),
        SCHEMA,
        references=REFS,
        landed_keys=None,
        now=NOW,
    )
    assert result.valid["fill_id"].to_list() == ["F1"]
    assert result.valid.schema["fill_date"] == pl.Date and result.valid["mail"].to_list() == [True]
    rules = dict(zip(result.quarantined["fill_id"], result.quarantined["_rule"], strict=True))
    assert rules == {
        "F2": "type:days_supply",
        "F3": "not_null:fill_date",
        "F4": "supply_range",
        "F5": "channel_known",
        "F6": "rx_known",
        "F7": "fresh",
        "F1": "unique_fill",
        "F8": "type:mail",
    }
    reasons = dict(zip(result.quarantined["fill_id"], result.quarantined["_reason"], strict=True))
    assert reasons["F2"] == "days_supply: 'thirty' is not a int64"
    assert "RX9" in reasons["F6"] and "400" in reasons["F4"]
    assert result.quarantined["_row"].to_list() == [2, 3, 4, 5, 6, 7, 8, 9]
    assert result.violations_by_rule["type:days_supply"] == 1


def test_rows_already_in_the_lake_are_duplicates_not_errors() -> None:
    landed = pl.DataFrame({"fill_id": ["F1"]})
    result = validate(
        batch(
            ("F1", "RX1", "2024-01-05", "30", "retail", None),
            ("F9", "RX1", "2024-01-06", "30", "retail", None),
        ),
        SCHEMA,
        references=REFS,
        landed_keys=landed,
        now=NOW,
    )
    assert result.valid["fill_id"].to_list() == ["F9"]
    assert result.duplicates == 1 and result.quarantined.height == 0


def test_a_missing_required_column_names_it() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate(batch().drop("days_supply"), SCHEMA, references=REFS, landed_keys=None, now=NOW)
    assert [v.field for v in error.value.violations] == ["source.columns.days_supply"]


def test_a_small_batch_is_checked_against_everything_landed_and_referenced() -> None:
    """Against more landed keys and referenced values than it has rows, a batch is
    checked on the ones that occur in it: the answers must be those of the whole set."""
    composite = dataclasses.replace(SCHEMA, primary_key=("fill_id", "rx_id"))
    landed = pl.DataFrame(
        {"fill_id": [f"F{i}" for i in range(100)], "rx_id": ["RX1"] * 99 + ["RX2"]}
    )
    references = {("rx", "rx_id"): pl.Series([f"RX{i}" for i in range(1, 50)])}
    result = validate(
        batch(
            ("F1", "RX1", "2024-01-05", "30", "retail", None),  # landed
            ("F99", "RX2", "2024-01-05", "30", "retail", None),  # landed
            ("F2", "RX2", "2024-01-05", "30", "retail", None),  # F2 landed with RX1: new
            ("F500", "RX49", "2024-01-06", "30", "retail", None),  # new
            ("F501", "RX50", "2024-01-06", "30", "retail", None),  # unknown prescription
        ),
        composite,
        references=references,
        landed_keys=landed,
        now=NOW,
    )
    assert result.valid["fill_id"].to_list() == ["F2", "F500"]
    assert result.duplicates == 2
    assert result.quarantined["fill_id"].to_list() == ["F501"]
    assert result.quarantined["_rule"].to_list() == ["rx_known"]
