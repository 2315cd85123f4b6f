"""Model-health gauges: each health check publishes its drift and online figures, so
Prometheus alerts and dashboards see what GetModelHealth answered (last value wins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import metrics

if TYPE_CHECKING:  # health.py publishes through this module
    from evaluator.health import Health

_meter = metrics.get_meter("wavepod.evaluator")
_psi = _meter.create_gauge("wavepod.drift.psi", description="Population stability index")
_ks = _meter.create_gauge("wavepod.drift.ks", description="Kolmogorov-Smirnov statistic")
_z = _meter.create_gauge("wavepod.drift.z_score", description="Shift of the mean, in SEs")
_mae = _meter.create_gauge(
    "wavepod.online.mae", unit="d", description="Online MAE of the champion's labelled answers"
)
_coverage = _meter.create_gauge(
    "wavepod.online.label_coverage", description="Share of answers whose outcome arrived"
)
_retrain = _meter.create_gauge(
    "wavepod.retrain.recommended", description="1 while the health check recommends a retrain"
)


def publish(health: Health) -> None:
    model = {"model": health.model, "version": health.version}
    for drift in health.drift:
        feature = {**model, "feature": drift.feature}
        _psi.set(drift.psi, feature)
        _ks.set(drift.ks_statistic, feature)
        _z.set(drift.z_score, feature)
    mae = health.online.by_version.get(f"{health.version}/champion", {}).get("mae")
    if mae is not None:
        _mae.set(mae, model)
    _coverage.set(health.online.coverage, model)
    _retrain.set(1 if health.reasons else 0, model)
