"""Feature protos <-> the engine's types: the only module that knows both."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl
from google.protobuf.timestamp_pb2 import Timestamp

from feature.definition import FeatureSet
from feature.materialize import MaterializeResult
from feature.online.store import OnlineValue
from feature.stats import FeatureStats
from feature.training import TrainingSet
from wavepod.common.v1 import refs_pb2
from wavepod.feature.v1 import feature_pb2
from wavepod.values import to_timestamp


def feature_set_to_proto(fs: FeatureSet) -> feature_pb2.FeatureSet:
    return feature_pb2.FeatureSet(
        ref=feature_pb2.FeatureSetRef(name=fs.name, version=fs.version),
        entity_key=fs.entity_key,
        event_time_column=fs.event_time,
        source_datasets=list(fs.sources),
        features=[
            feature_pb2.FeatureSpec(name=f.name, dtype=str(f.dtype), description=f.description)
            for f in fs.features
        ],
        definition_hash=fs.definition_hash,
    )


def day(stamp: Timestamp, is_set: bool) -> date | None:
    return stamp.ToDatetime().date() if is_set else None


def summary_to_proto(fs: FeatureSet, result: MaterializeResult) -> feature_pb2.MaterializeSummary:
    return feature_pb2.MaterializeSummary(
        output=refs_pb2.DatasetRef(
            name=fs.name, version=fs.version, uri=result.uri, content_hash=result.content_hash
        ),
        entities=result.entities,
        partitions_written=result.partitions_written,
        partitions_skipped=result.partitions_skipped,
        rows=result.rows,
        online_written=result.online_written,
    )


def _column(name: str, dtype: pl.DataType, raw: list[object]) -> feature_pb2.FeatureColumn:
    nulls = [i for i, value in enumerate(raw) if value is None]
    column = feature_pb2.FeatureColumn(name=name, null_positions=nulls)
    if dtype.is_float():
        column.doubles.values.extend(0.0 if v is None else v for v in raw)  # type: ignore[misc]
    elif dtype.is_integer():
        column.ints.values.extend(0 if v is None else v for v in raw)  # type: ignore[misc]
    elif dtype == pl.Boolean:
        column.bools.values.extend(False if v is None else v for v in raw)  # type: ignore[misc]
    else:  # strings; dates and times as ISO text
        column.strings.values.extend(
            "" if v is None else v.isoformat() if isinstance(v, date) else str(v) for v in raw
        )
    return column


def online_to_proto(
    fs: FeatureSet, found: Sequence[OnlineValue], names: Sequence[str]
) -> feature_pb2.GetOnlineFeaturesResponse:
    """Per-entity freshness and flags, and one column per feature in request order."""
    response = feature_pb2.GetOnlineFeaturesResponse()
    for value in found:
        entity = response.entities.add(
            entity_id=value.entity_id, missing=value.missing, stale=value.stale
        )
        if value.event_time is not None:
            entity.event_time.CopyFrom(to_timestamp(value.event_time))
    dtypes = {f.name: f.dtype for f in fs.features}
    response.columns.extend(
        _column(name, dtypes[name], [v.values.get(name) for v in found])
        for name in names or fs.feature_names
    )
    return response


def training_set_to_proto(
    fs: FeatureSet, training: TrainingSet
) -> feature_pb2.BuildTrainingSetResponse:
    return feature_pb2.BuildTrainingSetResponse(
        training_set=refs_pb2.DatasetRef(
            name=f"{fs.name}-training",
            version=fs.version,
            uri=training.uri,
            content_hash=training.content_hash,
        ),
        feature_set=feature_pb2.FeatureSetRef(name=fs.name, version=fs.version),
        rows=training.rows,
        definition_hash=training.definition_hash,
    )


def stats_to_proto(stats: FeatureStats) -> feature_pb2.FeatureStats:
    return feature_pb2.FeatureStats(
        feature=stats.feature,
        null_fraction=stats.null_fraction,
        mean=stats.mean,
        stddev=stats.stddev,
        bin_edges=list(stats.bin_edges),
        bin_counts=list(stats.bin_counts),
        category_counts=dict(stats.category_counts),
        rows=stats.rows,
        min=stats.minimum,
        max=stats.maximum,
    )
