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
class FeatureSet:
    name: str
    version: str
    entity_key: str
    event_time: str
    sources: tuple[str, ...]
    features: tuple[Feature, ...]
    description: str = ""

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
            "features": [
                {
                    "name": f.name,
                    "dtype": str(f.dtype),
                    "window": f.window.total_seconds() if f.window else None,
                    "expr": f.expr.meta.serialize(format="json"),
                }
                for f in self.features
            ],
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
        seen: set[str] = set()
        for feature in self.features:
            where = f"feature_set.features.{feature.name}"
            if feature.name in seen or feature.name in (self.entity_key, self.event_time):
                found.append(FieldViolation(where, "duplicate or reserved feature name"))
            seen.add(feature.name)
            missing = sorted(set(feature.expr.meta.root_names()) - set(columns))
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
        return found


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
