"""A real OTLP/gRPC receiver for tests: keeps the spans and metric points it is sent.

Services export to it exactly as they would to an OpenTelemetry Collector, so a test
sees what a collector would, across processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from wavepod.runtime.testing.process import free_port


@dataclass(frozen=True)
class ReceivedSpan:
    service: str  # the resource's service.name
    name: str
    trace_id: str  # hex, as OpenTelemetry's SDK formats them
    span_id: str
    parent_span_id: str  # "" for a root span
    links: tuple[str, ...]  # span ids this span links to


@dataclass(frozen=True)
class ReceivedPoint:
    service: str
    metric: str
    attributes: dict[str, str]


class OtlpReceiver(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.points: list[ReceivedPoint] = []
        self._lock = threading.Lock()
        self.endpoint = ""

    def Export(self, request, context):  # type: ignore[no-untyped-def]
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            with self._lock:
                self.spans.extend(_spans(request))
            return trace_service_pb2.ExportTraceServiceResponse()
        with self._lock:
            self.points.extend(_points(request))
        return metrics_service_pb2.ExportMetricsServiceResponse()


def _service(resource) -> str:  # type: ignore[no-untyped-def]
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    return attributes.get("service.name", "")


def _spans(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterator[ReceivedSpan]:
    for resource_spans in request.resource_spans:
        service = _service(resource_spans.resource)
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                yield ReceivedSpan(
                    service,
                    span.name,
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    span.parent_span_id.hex(),
                    tuple(link.span_id.hex() for link in span.links),
                )


def _points(request: metrics_service_pb2.ExportMetricsServiceRequest) -> Iterator[ReceivedPoint]:
    for resource_metrics in request.resource_metrics:
        service = _service(resource_metrics.resource)
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points if kind else ():
                    attributes = {a.key: a.value.string_value for a in point.attributes}
                    yield ReceivedPoint(service, metric.name, attributes)


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A receiver on loopback; its `endpoint` is what WAVEPOD_<SVC>_OTLP_ENDPOINT takes."""
    received = OtlpReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(received, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(received, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    received.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield received
    finally:
        server.stop(None)
