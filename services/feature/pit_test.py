"""The point-in-time join against an independent, slow reference, on adversarial cases
and on random data."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

from feature.pit import HAS_HISTORY, point_in_time_join

T0 = datetime(2024, 1, 1)
Row = dict[str, Any]


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def reference(labels: list[Row], features: list[Row]) -> list[Row]:
    """Plain loops: for each label, scan every feature row."""
    out = []
    for label in labels:
        best = None
        for index, row in enumerate(features):
            if row["id"] != label["id"]:
                continue
            if not (row["ts"] < label["t"] and row["ingested"] < label["t"]):
                continue
            key = (row["ts"], row["ingested"], index)
            if best is None or key > best[0]:
                best = (key, row)
        out.append(
            {**label, "value": best[1]["value"] if best else None, HAS_HISTORY: best is not None}
        )
    return out


def run(labels: list[Row], features: list[Row]) -> list[Row]:
    result = point_in_time_join(
        pl.DataFrame(labels, schema={"id": pl.String, "t": pl.Datetime("us"), "label": pl.Int64}),
        pl.DataFrame(
            features,
            schema={
                "id": pl.String,
                "ts": pl.Datetime("us"),
                "ingested": pl.Datetime("us"),
                "value": pl.Int64,
            },
        ),
        entity="id",
        label_time="t",
        feature_time="ts",
        ingested_at="ingested",
    )
    return result.to_dicts()


def feature(entity: str, ts: float, value: int, ingested: float | None = None) -> Row:
    return {
        "id": entity,
        "ts": day(ts),
        "ingested": day(ingested if ingested is not None else ts),
        "value": value,
    }


def label(entity: str, t: float, value: int = 0) -> Row:
    return {"id": entity, "t": day(t), "label": value}


@pytest.mark.parametrize(
    ("name", "features", "labels", "expected"),
    [
        (
            "a fill on the label's own instant is not history",
            [feature("a", 1, 10), feature("a", 5, 50)],
            [label("a", 5)],
            [10],
        ),
        (
            "late-arriving data is invisible until it arrived",
            [feature("a", 1, 10), feature("a", 4, 40, ingested=9)],
            [label("a", 5), label("a", 10)],
            [10, 40],
        ),
        ("an entity without history gets nulls", [feature("b", 1, 10)], [label("a", 5)], [None]),
        (
            "duplicate timestamps: the later ingestion wins",
            [feature("a", 3, 30, ingested=3), feature("a", 3, 31, ingested=4)],
            [label("a", 5)],
            [31],
        ),
        (
            "exact duplicates: the later input row wins, deterministically",
            [feature("a", 3, 30), feature("a", 3, 31)],
            [label("a", 5)],
            [31],
        ),
        (
            "an old correction ingested late does not override newer data",
            [feature("a", 4, 40), feature("a", 2, 20, ingested=4.5)],
            [label("a", 5)],
            [40],
        ),
        (
            "labels keep their order and duplicates",
            [feature("a", 1, 10), feature("a", 6, 60)],
            [label("a", 7), label("a", 2), label("a", 7)],
            [60, 10, 60],
        ),
    ],
)
def test_adversarial_cases(
    name: str, features: list[Row], labels: list[Row], expected: list[int | None]
) -> None:
    got = run(labels, features)
    assert [row["value"] for row in got] == expected, name
    assert got == reference(labels, features), name


def test_matches_the_reference_on_random_data() -> None:
    rng = random.Random(5)
    features = [
        feature(rng.choice("abcdef"), rng.randint(0, 40), i, ingested=rng.randint(0, 50))
        for i in range(600)
    ]
    features = [f if f["ingested"] >= f["ts"] else {**f, "ingested": f["ts"]} for f in features]
    labels = [label(rng.choice("abcdefg"), rng.randint(0, 55), i) for i in range(400)]
    assert run(labels, features) == reference(labels, features)


def test_feature_columns_may_not_shadow_label_columns() -> None:
    with pytest.raises(ValueError, match="label"):
        point_in_time_join(
            pl.DataFrame({"id": ["a"], "t": [T0], "label": [1]}),
            pl.DataFrame({"id": ["a"], "ts": [T0], "label": [2]}),
            entity="id",
            label_time="t",
            feature_time="ts",
        )


def test_a_dated_event_is_known_only_once_its_day_is_over() -> None:
    """Features dated by day against labels with times: the same day's fill may have
    happened after the label's hour, so it is not history until the next day."""
    labels = pl.DataFrame(
        {"id": ["a", "a"], "t": [T0 + timedelta(days=2, hours=12), T0 + timedelta(days=3, hours=1)]}
    )
    features = pl.DataFrame(
        {
            "id": ["a", "a"],
            "ts": [T0.date() + timedelta(days=1), T0.date() + timedelta(days=2)],
            "value": [1, 2],
        }
    )
    joined = point_in_time_join(labels, features, entity="id", label_time="t", feature_time="ts")
    assert joined["value"].to_list() == [1, 2]
