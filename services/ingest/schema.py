"""Dataset schemas: columns, keys, quality rules, and the compatibility rules between
versions (an optional column may be added within a major version; removing, retyping
or tightening a column needs a new major version)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from wavepod.runtime.status import FieldViolation

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VERSION = re.compile(r"^(\d+)\.(\d+)$")


class ColumnType(StrEnum):
    INT64 = "int64"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"

    @property
    def polars(self) -> pl.DataType:
        return {
            ColumnType.INT64: pl.Int64(),
            ColumnType.FLOAT64: pl.Float64(),
            ColumnType.STRING: pl.String(),
            ColumnType.BOOL: pl.Boolean(),
            ColumnType.DATE: pl.Date(),
            ColumnType.TIMESTAMP: pl.Datetime("us"),
        }[self]


class RuleKind(StrEnum):
    NOT_NULL = "not_null"
    RANGE = "range"  # params: min, max (either may be absent)
    ALLOWED_VALUES = "allowed_values"  # params: values (comma-separated)
    UNIQUE = "unique"  # the column (or the primary key if column is empty)
    REFERENCES = "references"  # params: dataset, column
    FRESHNESS = "freshness"  # params: max_age_days (event time vs. ingest time)


REQUIRED_PARAMS = {
    RuleKind.ALLOWED_VALUES: ("values",),
    RuleKind.REFERENCES: ("dataset", "column"),
    RuleKind.FRESHNESS: ("max_age_days",),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    pii: bool = False
    description: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    kind: RuleKind
    column: str = ""
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)


@dataclass(frozen=True)
class DatasetSchema:
    dataset: str
    version: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    event_time_column: str = ""
    rules: tuple[Rule, ...] = ()
    max_bad_row_ratio: float = 0.05

    @property
    def column_index(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    @property
    def version_tuple(self) -> tuple[int, int]:
        match = VERSION.match(self.version)
        return (int(match.group(1)), int(match.group(2))) if match else (0, 0)

    def violations(self) -> list[FieldViolation]:
        """Everything wrong with this definition, each naming its field."""
        found: list[FieldViolation] = []

        def bad(where: str, why: str) -> None:
            found.append(FieldViolation(where, why))

        if not DATASET_NAME.match(self.dataset):
            bad("schema.dataset", "must match [a-z][a-z0-9_]* (at most 63 characters)")
        if not VERSION.match(self.version):
            bad("schema.version", f"must be MAJOR.MINOR, got {self.version!r}")
        if not self.columns:
            bad("schema.columns", "at least one column is required")
        seen: set[str] = set()
        for i, column in enumerate(self.columns):
            if not column.name or column.name in seen:
                bad(f"schema.columns[{i}].name", f"empty or duplicate column name {column.name!r}")
            seen.add(column.name)
            if column.pii and column.type != ColumnType.STRING:
                bad(
                    f"schema.columns[{i}].pii",
                    "PII columns must be strings (they are pseudonymized)",
                )
        for key in self.primary_key:
            if key not in self.column_index:
                bad("schema.primary_key", f"unknown column {key!r}")
        if self.event_time_column:
            event_time = self.column_index.get(self.event_time_column)
            if event_time is None or event_time.type not in (ColumnType.DATE, ColumnType.TIMESTAMP):
                bad(
                    "schema.event_time_column",
                    f"{self.event_time_column!r} must be a date or timestamp column",
                )
        if not 0 <= self.max_bad_row_ratio <= 1:
            bad("schema.max_bad_row_ratio", "must be between 0 and 1")
        rule_ids: set[str] = set()
        for i, rule in enumerate(self.rules):
            where = f"schema.rules[{i}]"
            if rule.id in rule_ids:
                bad(f"{where}.id", f"duplicate rule id {rule.id!r}")
            rule_ids.add(rule.id)
            if rule.column and rule.column not in self.column_index:
                bad(f"{where}.column", f"rule {rule.id!r} names unknown column {rule.column!r}")
            if rule.kind != RuleKind.UNIQUE and not rule.column:
                bad(f"{where}.column", f"rule {rule.id!r} ({rule.kind}) needs a column")
            for name in REQUIRED_PARAMS.get(rule.kind, ()):
                if not rule.param(name):
                    bad(f"{where}.params.{name}", f"rule {rule.id!r} ({rule.kind}) needs {name}")
            for name in ("min", "max", "max_age_days"):
                value = rule.param(name)
                if value is not None and not _is_number(value):
                    bad(f"{where}.params.{name}", f"must be a number, got {value!r}")
        return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def compatibility_problems(current: DatasetSchema, proposed: DatasetSchema) -> list[FieldViolation]:
    """Why `proposed` cannot follow `current` (empty when it can)."""
    if proposed.version_tuple <= current.version_tuple:
        return [
            FieldViolation(
                "schema.version",
                f"{proposed.version} must be newer than the registered {current.version}",
            )
        ]
    if proposed.version_tuple[0] > current.version_tuple[0]:
        return []  # a new major version may break anything
    found = []
    new_major = f"needs a new major version ({current.version_tuple[0] + 1}.0)"
    for old in current.columns:
        new = proposed.column_index.get(old.name)
        if new is None:
            found.append(
                FieldViolation(
                    f"schema.columns.{old.name}", f"removing column {old.name!r} {new_major}"
                )
            )
        elif new.type != old.type:
            found.append(
                FieldViolation(
                    f"schema.columns.{old.name}",
                    f"retyping column {old.name!r} from {old.type} to {new.type} {new_major}",
                )
            )
        elif old.nullable and not new.nullable:
            found.append(
                FieldViolation(
                    f"schema.columns.{old.name}", f"making column {old.name!r} required {new_major}"
                )
            )
    for new in proposed.columns:
        if new.name not in current.column_index and not new.nullable:
            found.append(
                FieldViolation(
                    f"schema.columns.{new.name}",
                    f"new column {new.name!r} must be optional within a major version;"
                    f" a required one {new_major}",
                )
            )
    if proposed.primary_key != current.primary_key:
        found.append(FieldViolation("schema.primary_key", f"changing the primary key {new_major}"))
    return found
