"""Spans and metrics reach a real OTLP/gRPC endpoint, flushed on graceful shutdown."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from wavepod.runtime.testing import probe_pb2, probe_pb2_grpc
from wavepod.runtime.testing.process import free_port, service_process


class Collector(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    """A minimal OTLP receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, str], str]] = []
        self.metrics: list[tuple[str, dict[str, str]]] = []

    def Export(self, request, context):  # type: ignore[no-untyped-def]
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    self.spans.extend((resource, span.name) for span in scope.spans)
            return trace_service_pb2.ExportTraceServiceResponse()
        for resource_metrics in request.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.histogram.data_points:
                        attrs = {a.key: a.value.string_value for a in point.attributes}
                        self.metrics.append((metric.name, attrs))
        return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    received = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(received, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(received, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield received, port
    server.stop(None)


def test_spans_and_rpc_metrics_are_exported_over_otlp(collector: tuple[Collector, int]) -> None:
    received, port = collector
    env = {"WAVEPOD_PROBE_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
    with service_process("wavepod.runtime.testing.probe", "probe", env) as proc:
        with grpc.insecure_channel(proc.address) as channel:
            probe_pb2_grpc.ProbeServiceStub(channel).Echo(probe_pb2.ProbeRequest(text="x"))
        assert proc.terminate(timeout=20) == 0, proc.logs()

    echo = "/wavepod.runtime.testing.ProbeService/Echo"
    assert any(
        resource.get("service.name") == "wavepod-probe" and name == echo
        for resource, name in received.spans
    ), received.spans
    assert (
        "rpc.server.duration",
        {"rpc.method": echo, "rpc.grpc.status_code": "OK"},
    ) in received.metrics, received.metrics
