"""The feature service's data plane, transport-neutral: the servicer only converts.

It holds the registered feature sets, reads the lake, keeps offline materializations and
training sets under one store root, and serves the online store.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from feature.compute import LABEL_TIME, labels
from feature.definition import FeatureRegistry, FeatureSet
from feature.materialize import MaterializeResult, OfflineStore, materialize, write_online
from feature.online.store import OnlineStore, OnlineValue
from feature.stats import FeatureStats, feature_stats
from feature.training import TrainingSet, build_training_set
from wavepod.lake import Lake, history_cutoff, reading, scan
from wavepod.runtime.progress import Progress, no_progress
from wavepod.runtime.status import FieldViolation, InvalidArgument, NotFound


class FeatureEngine:
    def __init__(
        self,
        registry: FeatureRegistry,
        lake: Lake,
        store_root: str | Path,
        online: OnlineStore,
        *,
        online_max_age: timedelta | None = None,
        history_until: datetime | None = None,
    ) -> None:
        self.registry = registry
        self.lake = lake
        self.root = Path(store_root)
        self.online = online
        self.online_max_age = online_max_age
        self.history_until = history_until
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        # Feature sets whose latest values this process has put in a non-persistent store.
        self._online_loaded: set[str] = set()

    def _lock(self, feature_set: FeatureSet) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(feature_set.ref, threading.Lock())

    def feature_set(self, name: str, version: str) -> FeatureSet:
        if not name:
            raise InvalidArgument([FieldViolation("feature_set.name", "is required")])
        if not version:
            raise InvalidArgument([FieldViolation("feature_set.version", "is required")])
        return self.registry.get(name, version)

    def offline(self, feature_set: FeatureSet) -> OfflineStore:
        return OfflineStore(self.root / "features", feature_set)

    def materialize(
        self,
        feature_set: FeatureSet,
        start: date | None = None,
        end: date | None = None,
        progress: Progress = no_progress,
    ) -> MaterializeResult:
        with self._lock(feature_set):
            self._reload_online(feature_set)
            return materialize(
                feature_set,
                self.lake,
                self.offline(feature_set),
                self.online,
                start=start,
                end=end,
                history_until=self.history_until,
                progress=progress,
            )

    def _reload_online(self, feature_set: FeatureSet) -> None:
        """An embedded online store starts empty in every process, while the offline
        store survives restarts (and an up-to-date one is not recomputed): refill the
        online store from it once. Call with the feature set's lock held."""
        if self.online.persistent or feature_set.ref in self._online_loaded:
            return
        offline = self.offline(feature_set)
        if offline.manifest().partitions:
            # Month files in order, each in event-time order: newest last, as write_online needs.
            write_online(feature_set, offline.scan().collect(), self.online)
        self._online_loaded.add(feature_set.ref)

    def online_features(
        self,
        feature_set: FeatureSet,
        entity_ids: Sequence[str],
        features: Sequence[str] = (),
        now: datetime | None = None,
    ) -> list[OnlineValue]:
        unknown = sorted(set(features) - set(feature_set.feature_names))
        if unknown:
            raise InvalidArgument(
                [FieldViolation("features", f"{feature_set.ref} has no features {unknown}")]
            )
        if any(not e for e in entity_ids):
            raise InvalidArgument([FieldViolation("entity_ids", "an entity id is empty")])
        if not self.online.persistent and feature_set.ref not in self._online_loaded:
            with self._lock(feature_set):
                self._reload_online(feature_set)
        found = self.online.read(
            feature_set.ref, entity_ids, now or datetime.now(UTC), self.online_max_age
        )
        if not features:
            return found
        return [
            OnlineValue(
                v.entity_id,
                {k: v.values[k] for k in features if k in v.values},
                v.event_time,
                v.missing,
                v.stale,
            )
            for v in found
        ]

    def training_set(
        self, feature_set: FeatureSet, labels_uri: str = "", progress: Progress = no_progress
    ) -> TrainingSet:
        """Labels from `labels_uri` (Parquet with the entity key and `label_time`), or the
        set's own label computed from the lake when empty. Materializes first (a no-op
        when up to date) so the features are those of the lake now."""
        self.materialize(feature_set, progress=progress)
        frame = self._labels(feature_set, labels_uri)
        with self._lock(feature_set):
            return build_training_set(
                feature_set,
                self.offline(feature_set),
                frame,
                LABEL_TIME,
                self.root / "training_sets",
            )

    def _labels(self, feature_set: FeatureSet, labels_uri: str) -> pl.DataFrame:
        if labels_uri:
            try:
                return pl.read_parquet(labels_uri.removeprefix("file://"))
            except (FileNotFoundError, pl.exceptions.ComputeError) as error:
                raise InvalidArgument(
                    [FieldViolation("labels.uri", f"cannot read Parquet labels: {error}")]
                ) from None
        if feature_set.label is None:
            raise InvalidArgument(
                [FieldViolation("labels", f"{feature_set.ref} defines no label: pass labels")]
            )
        files = self.lake.files(feature_set.event_source)
        events = scan(files, self.history_until or history_cutoff(files), self.lake.storage_options)
        with reading(feature_set.event_source):
            return labels(feature_set, events).collect()

    def stats(
        self, feature_set: FeatureSet, dataset_uri: str = ""
    ) -> tuple[str, list[FeatureStats]]:
        """Summaries of the latest materialization, or of a training set by its URI."""
        offline = self.offline(feature_set)
        edges = offline.manifest().edges
        if not dataset_uri:
            summary = offline.stats()
            if summary.height == 0:
                raise NotFound(f"{feature_set.ref} has no materialization yet")
            return str(offline.offline), feature_stats(summary, feature_set.features, edges)
        path = Path(dataset_uri.removeprefix("file://"))
        stats_path = path.with_name(path.name.replace(".parquet", ".stats.parquet"))
        training_root = (self.root / "training_sets").resolve()
        if training_root not in stats_path.resolve().parents or not stats_path.exists():
            raise NotFound(f"no statistics for dataset {dataset_uri!r} of {feature_set.ref}")
        return dataset_uri, feature_stats(pl.read_parquet(stats_path), feature_set.features, edges)
