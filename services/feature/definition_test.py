from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl
import pytest

from feature.definition import FeatureRegistry, FeatureSet
from feature.windows import count, days_since_first, last, mean
from wavepod.runtime.status import AlreadyExists, InvalidArgument, NotFound

COLUMNS = {
    "rx_id": pl.String(),
    "fill_date": pl.Date(),
    "gap": pl.Float64(),
    "channel": pl.String(),
}
FS = FeatureSet(
    name="refill",
    version="1",
    entity_key="rx_id",
    event_time="fill_date",
    sources=("fills",),
    features=(
        last("channel", "channel", "rx_id", pl.String()),
        mean("gap_mean_90d", "gap", "rx_id", "fill_date", 90),
        count("fills_365d", "rx_id", "fill_date", 365),
        days_since_first("days_since_first", "rx_id", "fill_date"),
    ),
)


def test_a_changed_definition_needs_a_new_version() -> None:
    registry = FeatureRegistry()
    registry.register(FS)
    registry.register(FS)  # the same definition again is fine
    changed = replace(
        FS,
        features=(
            *FS.features[:1],
            mean("gap_mean_90d", "gap", "rx_id", "fill_date", 60),
            *FS.features[2:],
        ),
    )
    assert changed.definition_hash != FS.definition_hash
    with pytest.raises(AlreadyExists, match="needs a new version"):
        registry.register(changed)
    registry.register(replace(changed, version="2"))
    assert registry.get("refill", "2").features[1].window == timedelta(days=60)


def test_unknown_sets_and_versions_are_named() -> None:
    registry = FeatureRegistry()
    registry.register(FS)
    with pytest.raises(NotFound, match="unknown feature set 'nope'"):
        registry.get("nope", "1")
    with pytest.raises(NotFound, match=r"no version '9'; registered: \['1'\]"):
        registry.get("refill", "9")


def test_definitions_are_checked_against_their_data() -> None:
    registry = FeatureRegistry()
    registry.validate(FS, COLUMNS, data_span=timedelta(days=400))
    with pytest.raises(InvalidArgument) as error:
        registry.validate(
            FS, {k: v for k, v in COLUMNS.items() if k != "gap"}, data_span=timedelta(days=100)
        )
    assert {(v.field, v.description) for v in error.value.violations} == {
        ("feature_set.features.gap_mean_90d", "references missing columns ['gap']"),
        (
            "feature_set.features.fills_365d",
            "window of 365 days is longer than the data (100 days)",
        ),
    }
    with pytest.raises(InvalidArgument, match="entity key column 'rx_id'"):
        registry.validate(FS, {"fill_date": pl.Date()})


def test_window_features_compute_per_event_over_history() -> None:
    fills = (
        pl.DataFrame(
            {
                "rx_id": ["a", "a", "a", "b"],
                "fill_date": [
                    datetime(2024, 1, 1),
                    datetime(2024, 2, 1),
                    datetime(2024, 6, 1),
                    datetime(2024, 1, 5),
                ],
                "gap": [None, 31.0, 121.0, None],
                "channel": ["retail", "mail", "mail", "retail"],
            }
        )
        .with_columns(pl.col("fill_date").cast(pl.Date))
        .sort("rx_id", "fill_date")
    )
    out = fills.with_columns(f.expr.alias(f.name) for f in FS.features)
    a = out.filter(pl.col("rx_id") == "a")
    assert a["fills_365d"].to_list() == [1, 2, 3]
    assert a["gap_mean_90d"].to_list()[1:] == [31.0, 121.0]  # February left the 90-day window
    assert a["days_since_first"].to_list() == [0, 31, 152]
