"""Spans and metrics reach a real OTLP/gRPC endpoint, flushed on graceful shutdown."""

from __future__ import annotations

import grpc

from wavepod.runtime.testing import probe_pb2, probe_pb2_grpc
from wavepod.runtime.testing.otlp import ReceivedPoint, otlp_receiver
from wavepod.runtime.testing.process import service_process


def test_spans_and_rpc_metrics_are_exported_over_otlp() -> None:
    with otlp_receiver() as received:
        env = {"WAVEPOD_PROBE_OTLP_ENDPOINT": received.endpoint}
        with service_process("wavepod.runtime.testing.probe", "probe", env) as proc:
            with grpc.insecure_channel(proc.address) as channel:
                probe_pb2_grpc.ProbeServiceStub(channel).Echo(probe_pb2.ProbeRequest(text="x"))
            assert proc.terminate(timeout=20) == 0, proc.logs()

    echo = "/wavepod.runtime.testing.ProbeService/Echo"
    assert any(
        span.service == "wavepod-probe" and span.name == echo for span in received.spans
    ), received.spans
    assert (
        ReceivedPoint(
            "wavepod-probe",
            "rpc.server.duration",
            {"rpc.method": echo, "rpc.grpc.status_code": "OK"},
        )
        in received.points
    ), received.points


def test_head_sampling_follows_the_standard_environment() -> None:
    """At thousands of calls a second nobody keeps every trace: OpenTelemetry's own
    OTEL_TRACES_SAMPLER settings apply (here a 0 ratio), and metrics still count every
    call."""
    with otlp_receiver() as received:
        env = {
            "WAVEPOD_PROBE_OTLP_ENDPOINT": received.endpoint,
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0",
        }
        with service_process("wavepod.runtime.testing.probe", "probe", env) as proc:
            with grpc.insecure_channel(proc.address) as channel:
                for _ in range(5):
                    probe_pb2_grpc.ProbeServiceStub(channel).Echo(probe_pb2.ProbeRequest(text="x"))
            assert proc.terminate(timeout=20) == 0, proc.logs()

    assert not [s for s in received.spans if s.service == "wavepod-probe"], received.spans
    assert any(
        p.service == "wavepod-probe" and p.metric == "rpc.server.duration" for p in received.points
    ), received.points
