"""Training sets: label rows joined with features as known strictly before each label.

The output is an immutable Parquet file named by what produced it (labels, feature-set
definition, materialization) plus the sha256 of its bytes: the dataset reference the
trainer records as lineage. Its feature summaries are stored beside it as the model's
drift baseline.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from feature.compute import AVAILABLE_AT
from feature.definition import FeatureSet
from feature.materialize import OfflineStore
from feature.pit import point_in_time_join
from feature.stats import summarize
from wavepod.runtime.status import FieldViolation, InvalidArgument

FEATURES_AS_OF = "features_as_of"


@dataclass(frozen=True)
class TrainingSet:
    uri: str
    content_hash: str
    rows: int
    feature_set: str  # name:version
    definition_hash: str
    stats_uri: str


def check_labels(feature_set: FeatureSet, labels: pl.DataFrame, label_time: str) -> None:
    problems = []
    schema = labels.schema
    if feature_set.entity_key not in schema:
        problems.append(
            FieldViolation("labels", f"needs the entity key column {feature_set.entity_key!r}")
        )
    if label_time not in schema:
        problems.append(FieldViolation("labels", f"needs the event time column {label_time!r}"))
    elif not schema[label_time].is_temporal():
        problems.append(
            FieldViolation(
                "labels", f"{label_time!r} must be a date or timestamp, not {schema[label_time]}"
            )
        )
    if problems:
        raise InvalidArgument(problems)
    if labels.height == 0:
        raise InvalidArgument([FieldViolation("labels", "has no rows")])


def build_training_set(
    feature_set: FeatureSet,
    offline: OfflineStore,
    labels: pl.DataFrame,
    label_time: str,
    output_root: Path,
) -> TrainingSet:
    fs = feature_set
    check_labels(fs, labels, label_time)
    manifest = offline.manifest()
    features = offline.scan().select(
        fs.entity_key,
        fs.event_time,
        AVAILABLE_AT,
        pl.col(fs.event_time).alias(FEATURES_AS_OF),
        *fs.feature_names,
    )
    entity_type = labels.schema[fs.entity_key]
    joined = point_in_time_join(
        labels,
        features.with_columns(pl.col(fs.entity_key).cast(entity_type)).collect(),
        entity=fs.entity_key,
        label_time=label_time,
        feature_time=fs.event_time,
        ingested_at=AVAILABLE_AT,
        feature_columns=[FEATURES_AS_OF, *fs.feature_names],
    )
    labels_hash = hashlib.sha256(labels.hash_rows(seed=0).to_numpy().tobytes()).hexdigest()
    name = hashlib.sha256(
        f"{fs.definition_hash}:{manifest.fingerprint}:{labels_hash}".encode()
    ).hexdigest()[:24]
    folder = Path(output_root) / fs.name / fs.version
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    tmp = folder / f".{name}.parquet.tmp"
    joined.write_parquet(tmp, compression="zstd")
    os.replace(tmp, path)
    stats_path = folder / f"{name}.stats.parquet"
    summarize(joined, fs.features, manifest.edges).write_parquet(tmp)
    os.replace(tmp, stats_path)
    return TrainingSet(
        uri=str(path),
        content_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
        rows=joined.height,
        feature_set=fs.ref,
        definition_hash=fs.definition_hash,
        stats_uri=str(stats_path),
    )
