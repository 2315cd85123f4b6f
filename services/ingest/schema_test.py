from __future__ import annotations

from dataclasses import replace

from ingest.schema import Column, ColumnType, DatasetSchema, Rule, RuleKind, compatibility_problems
from wavepod.runtime.status import FieldViolation

V1 = DatasetSchema(
    dataset="orders",
    version="1.0",
    columns=(
        Column("order_id", ColumnType.STRING, nullable=False),
        Column("amount", ColumnType.FLOAT64),
        Column("placed", ColumnType.DATE, nullable=False),
    ),
    primary_key=("order_id",),
    event_time_column="placed",
)


def fields(problems: list[FieldViolation]) -> list[str]:
    return [p.field for p in problems]


def test_adding_an_optional_column_is_compatible() -> None:
    v11 = replace(V1, version="1.1", columns=(*V1.columns, Column("note", ColumnType.STRING)))
    assert compatibility_problems(V1, v11) == []


def test_breaking_changes_need_a_new_major_and_name_the_column() -> None:
    removed = replace(V1, version="1.1", columns=V1.columns[:2])
    [problem] = compatibility_problems(V1, removed)
    assert (
        problem.field == "schema.columns.placed"
        and "new major version (2.0)" in problem.description
    )

    retyped = replace(
        V1,
        version="1.1",
        columns=(V1.columns[0], Column("amount", ColumnType.INT64), V1.columns[2]),
    )
    assert fields(compatibility_problems(V1, retyped)) == ["schema.columns.amount"]

    required = replace(
        V1, version="1.1", columns=(*V1.columns, Column("note", ColumnType.STRING, nullable=False))
    )
    assert fields(compatibility_problems(V1, required)) == ["schema.columns.note"]

    assert compatibility_problems(V1, replace(removed, version="2.0")) == []


def test_versions_must_increase() -> None:
    assert fields(compatibility_problems(V1, replace(V1, version="1.0"))) == ["schema.version"]


def test_definition_errors_name_their_field() -> None:
    bad = DatasetSchema(
        dataset="Bad Name",
        version="one",
        columns=(Column("a", ColumnType.STRING), Column("a", ColumnType.INT64)),
        primary_key=("missing",),
        event_time_column="a",
        rules=(
            Rule("r1", RuleKind.RANGE, "a", (("min", "low"),)),
            Rule("r2", RuleKind.REFERENCES, "a"),
        ),
        max_bad_row_ratio=2,
    )
    assert set(fields(bad.violations())) == {
        "schema.dataset",
        "schema.version",
        "schema.columns[1].name",
        "schema.primary_key",
        "schema.event_time_column",
        "schema.max_bad_row_ratio",
        "schema.rules[0].params.min",
        "schema.rules[1].params.dataset",
        "schema.rules[1].params.column",
    }
