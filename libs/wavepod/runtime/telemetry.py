"""OpenTelemetry traces and metrics for a service.

Spans are always created (so logs and responses carry trace ids); they are exported
over OTLP/gRPC only when an endpoint is configured. Metrics are recorded once, through
OpenTelemetry's API, and read by either or both of: OTLP export (to a collector) and a
Prometheus /metrics page (for a scrape without one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider | None

    def shutdown(self) -> None:
        """Flushes pending spans and metrics; called on graceful shutdown."""
        self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def configure_telemetry(
    service: str,
    version: str,
    otlp_endpoint: str | None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> Telemetry:
    resource = Resource.create({SERVICE_NAME: f"wavepod-{service}", SERVICE_VERSION: version})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    if metrics_port is not None:
        # Imported lazily, like the OTLP exporter: only a service that serves the page pays.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        readers.append(PrometheusMetricReader())
        server, _ = start_http_server(metrics_port, addr=metrics_host)
        log.info(
            "metrics", extra={"address": f"http://{metrics_host}:{server.server_port}/metrics"}
        )
    if otlp_endpoint:
        # Imported lazily: the exporter pulls in its own gRPC stubs.
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = otlp_endpoint.startswith("http://")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=insecure))
        )
        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=otlp_endpoint, insecure=insecure)
            )
        )
    meter_provider = None
    if readers:
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
    trace.set_tracer_provider(tracer_provider)
    return Telemetry(tracer_provider, meter_provider)
