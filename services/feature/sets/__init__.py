"""Feature sets the service knows, registered explicitly."""

from __future__ import annotations

from feature.definition import FeatureRegistry
from feature.sets.refill import REFILL_V1


def builtin_registry() -> FeatureRegistry:
    registry = FeatureRegistry()
    registry.register(REFILL_V1)
    return registry
