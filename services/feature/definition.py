"""Feature sets as versioned code, and the registry that keeps versions honest.

A feature set names its entity key, event-time column and source datasets, and defines
each feature as a polars expression evaluated over an entity's history (rows sorted by
event time, one output per row). Its definition hash covers everything that changes
values, expressions included, so registering a changed definition under an existing
version is refused: a changed feature needs a new version.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from wavepod.runtime.status import AlreadyExists, FieldViolation, InvalidArgument, NotFound


@dataclass(frozen=True)
class Feature:
    name: str
    expr: pl.Expr
    dtype: pl.DataType
    description: str = ""
    # The longest look-back the expression uses (None: the whole history).
    window: timedelta | None = None


@dataclass(frozen=True)
class Join:
    """A dimension dataset joined onto the event rows by key (its latest row per key)."""

    dataset: str
    on: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TimeToNextEvent:
    """The label: days from an event to the entity's next event on a later day.

    Censored (label null, `censored` true) when there is no next event within `horizon_days`
    (discontinued) or the data ends before the horizon (not yet known). The label row's
    time is the day after the event: the prediction is made once the event is recorded,
    so the event itself is history and the next one is strictly in the future.
    """

    name: str
    horizon_days: int


@dataclass(frozen=True)
class FeatureSet:
    """`sources[0]` holds the events; `joins` add dimension columns; `derived` columns are
    computed in order (each may use the ones before) and are not features themselves."""

    name: str
    version: str
    entity_key: str
    event_time: str
    sources: tuple[str, ...]
    features: tuple[Feature, ...]
    description: str = ""
    joins: tuple[Join, ...] = ()
    derived: tuple[Feature, ...] = ()
    # Orders events of the same entity and time (e.g. the event id); kept in the output.
    row_id: str | None = None
    # Features that read beyond the entity (e.g. the patient's other prescriptions) make a
    # row known only once every event of this group up to its time is known.
    availability_group: str | None = None
    label: TimeToNextEvent | None = None
    # How long an online value lives after it was written.
    online_ttl: timedelta = timedelta(days=400)

    @property
    def event_source(self) -> str:
        return self.sources[0]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def definition_hash(self) -> str:
        canonical = {
            "name": self.name,
            "version": self.version,
            "entity_key": self.entity_key,
            "event_time": self.event_time,
            "sources": list(self.sources),
            "joins": [[j.dataset, j.on, list(j.columns)] for j in self.joins],
            "derived": [_canonical(f) for f in self.derived],
            "features": [_canonical(f) for f in self.features],
            "row_id": self.row_id,
            "availability_group": self.availability_group,
            "label": [self.label.name, self.label.horizon_days] if self.label else None,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()

    def violations(
        self, columns: Mapping[str, pl.DataType], data_span: timedelta | None = None
    ) -> list[FieldViolation]:
        """What is wrong with this definition against the source columns it will read
        (and, when known, the time the data spans), each naming its feature."""
        found = []
        for needed, role in ((self.entity_key, "entity key"), (self.event_time, "event time")):
            if needed not in columns:
                found.append(
                    FieldViolation(
                        f"feature_set.{role.replace(' ', '_')}",
                        f"{role} column {needed!r} is not in the sources",
                    )
                )
        known = set(columns)
        seen: set[str] = set()
        for kind, items in (("derived", self.derived), ("features", self.features)):
            for feature in items:
                where = f"feature_set.{kind}.{feature.name}"
                if feature.name in seen or feature.name in (self.entity_key, self.event_time):
                    found.append(FieldViolation(where, "duplicate or reserved feature name"))
                seen.add(feature.name)
                missing = sorted(set(feature.expr.meta.root_names()) - known)
                if missing:
                    found.append(FieldViolation(where, f"references missing columns {missing}"))
                if feature.window and data_span is not None and feature.window > data_span:
                    found.append(
                        FieldViolation(
                            where,
                            f"window of {feature.window.days} days is longer than the data"
                            f" ({data_span.days} days)",
                        )
                    )
                if kind == "derived":
                    known.add(feature.name)
        return found


def _canonical(feature: Feature) -> dict[str, object]:
    return {
        "name": feature.name,
        "dtype": str(feature.dtype),
        "window": feature.window.total_seconds() if feature.window else None,
        "expr": feature.expr.meta.serialize(format="json"),
    }


class FeatureRegistry:
    """Registered feature sets by name and version (explicit registration, like Pants)."""

    def __init__(self) -> None:
        self._sets: dict[tuple[str, str], FeatureSet] = {}
        self._lock = threading.Lock()

    def register(self, feature_set: FeatureSet) -> None:
        key = (feature_set.name, feature_set.version)
        with self._lock:
            existing = self._sets.get(key)
            if existing is not None and existing.definition_hash != feature_set.definition_hash:
                raise AlreadyExists(
                    f"{feature_set.ref} is registered with another definition"
                    f" ({existing.definition_hash[:12]} != {feature_set.definition_hash[:12]});"
                    " a changed feature set needs a new version"
                )
            self._sets[key] = feature_set

    def all(self) -> list[FeatureSet]:
        with self._lock:
            return sorted(self._sets.values(), key=lambda s: (s.name, s.version))

    def get(self, name: str, version: str) -> FeatureSet:
        with self._lock:
            found = self._sets.get((name, version))
            if found is not None:
                return found
            versions = sorted(v for n, v in self._sets if n == name)
        if not versions:
            raise NotFound(f"unknown feature set {name!r}")
        raise NotFound(f"feature set {name!r} has no version {version!r}; registered: {versions}")

    def validate(
        self,
        feature_set: FeatureSet,
        columns: Mapping[str, pl.DataType],
        data_span: timedelta | None = None,
    ) -> None:
        if problems := feature_set.violations(columns, data_span):
            raise InvalidArgument(problems)
