"""The gateway's model metrics: what it answered, by model, version and route, and what
serving costs (OpenTelemetry instruments; Prometheus and OTLP read them alike).

Cost per 1K predictions is derived where it is judged (Prometheus: the configured cost
per hour over the measured prediction rate), so the gateway only states its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

# Days until the next refill: fine below a quarter, coarse beyond.
_VALUE_BUCKETS = (0, 7, 14, 21, 28, 35, 45, 60, 75, 90, 120, 180, 365)
# Enough values per answer to draw the distribution; recording every value of a
# 10,000-row request would cost more than scoring it (the counter counts them all).
_VALUES_PER_ANSWER = 64


class PredictionMetrics:
    def __init__(self, cost_per_hour: float = 0.0, cost_per_1k_forecast: float = 0.0) -> None:
        meter = metrics.get_meter("wavepod.gateway")
        self._count = meter.create_counter(
            "wavepod.predictions", unit="{prediction}", description="Predictions answered"
        )
        self._values = meter.create_histogram(
            "wavepod.prediction.value",
            unit="d",
            description="Predicted days to next refill (sampled per answer)",
            explicit_bucket_boundaries_advisory=_VALUE_BUCKETS,
        )

        def constant(value: float) -> Callable[[CallbackOptions], Iterable[Observation]]:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                return [Observation(value)]

            return observe

        meter.create_observable_gauge(
            "wavepod.serving.cost_per_hour",
            callbacks=[constant(cost_per_hour)],
            description="Configured cost of the serving fleet per hour",
        )
        meter.create_observable_gauge(
            "wavepod.serving.cost_per_1k_forecast",
            callbacks=[constant(cost_per_1k_forecast)],
            description="Forecast cost per 1,000 predictions (the alert's baseline)",
        )

    def record(self, model: str, version: str, route: str, values: np.ndarray) -> None:
        attributes = {"model": model, "version": version, "route": route}
        self._count.add(int(values.size), attributes)
        step = max(1, values.size // _VALUES_PER_ANSWER)
        for value in values[::step][:_VALUES_PER_ANSWER].tolist():
            self._values.record(value, attributes)
