"""Feature protos <-> the engine's types: the only module that knows both."""

from __future__ import annotations

from datetime import date

from google.protobuf.timestamp_pb2 import Timestamp

from feature.definition import FeatureSet
from feature.materialize import MaterializeResult
from feature.online.store import OnlineValue
from feature.stats import FeatureStats
from feature.training import TrainingSet
from wavepod.common.v1 import refs_pb2, values_pb2
from wavepod.feature.v1 import feature_pb2
from wavepod.values import to_timestamp, to_value


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
        partitions_written=result.days_written,
        partitions_skipped=result.days_skipped,
        rows=result.rows,
        online_written=result.online_written,
    )


def online_to_proto(value: OnlineValue) -> feature_pb2.EntityFeatures:
    entity = feature_pb2.EntityFeatures(
        entity_id=value.entity_id,
        row=values_pb2.Row(values={k: to_value(v) for k, v in value.values.items()}),
        missing=value.missing,
        stale=value.stale,
    )
    if value.event_time is not None:
        entity.event_time.CopyFrom(to_timestamp(value.event_time))
    return entity


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
