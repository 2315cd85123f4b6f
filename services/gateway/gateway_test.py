"""The gateway in front of real feature and inference services, all as processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import polars as pl
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from feature.testing import small_pharmacy, write_lake
from gateway.feedback import FEEDBACK_SCHEMA
from gateway.ingest_client import IngestClient
from gateway.log_shipper import DATASET, SHIPPED, LogShipper
from gateway.testing import LABEL, publish_model, train_refill_model
from inference.repository import ModelRepository
from ingest.testing import ingest_env
from wavepod.common.v1 import refs_pb2, values_pb2
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime.auth import hash_token
from wavepod.runtime.testing.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from wavepod.runtime.testing.process import ServiceProcess, free_port, service_process
from wavepod.runtime.testing.prometheus import scrape
from wavepod.signature import ModelSignature
from wavepod.values import to_value

TOKENS = {
    "alice-token": ("alice", "predict"),
    "bob-token": ("bob", "feedback"),
    "carol-token": ("carol", "predict"),
    "dave-token": ("dave", "predict"),  # streams: a rate-limit bucket of its own
}


@dataclass(frozen=True)
class Stack:
    gateway: ServiceProcess
    training: pl.DataFrame
    signature: ModelSignature
    expected: np.ndarray  # the native model's predictions for `training`
    log_dir: Path
    ingest: str
    telemetry: OtlpReceiver  # where every process of the stack exports its spans
    metrics_url: str  # the gateway's Prometheus page


def _telemetry(service: str, receiver: OtlpReceiver) -> dict[str, str]:
    # Spans leave each process within 50 ms instead of the SDK's 5 s batch delay.
    return {
        f"WAVEPOD_{service.upper()}_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("gateway")
    with otlp_receiver() as receiver:
        yield from _stack(state, receiver)


def _stack(state: Path, receiver: OtlpReceiver) -> Iterator[Stack]:
    write_lake(state / "lake", small_pharmacy(patients=300))
    tokens = state / "tokens"
    tokens.write_text("".join(f"{hash_token(t)} {n} {r}\n" for t, (n, r) in TOKENS.items()))
    feature_env = {
        "WAVEPOD_FEATURE_LAKE": str(state / "lake"),
        "WAVEPOD_FEATURE_STORE_ROOT": str(state / "features"),
        **_telemetry("feature", receiver),
    }
    with service_process("feature.server", "feature", feature_env) as feature:
        with grpc.insecure_channel(feature.address) as channel:
            stub = feature_pb2_grpc.FeatureServiceStub(channel)
            ref = feature_pb2.FeatureSetRef(name="refill", version="1")
            built = stub.BuildTrainingSet(
                feature_pb2.BuildTrainingSetRequest(feature_set=ref), timeout=120
            )
            names = [
                f.name
                for f in stub.ListFeatureSets(feature_pb2.ListFeatureSetsRequest())
                .feature_sets[0]
                .features
            ]
        training = pl.read_parquet(built.training_set.uri).filter(pl.col(LABEL).is_not_null())
        repo = ModelRepository(state / "models")
        model = train_refill_model(training, names)
        publish_model(repo, "refill", 1, model)
        inference_env = {
            "WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repo.root),
            **_telemetry("inference", receiver),
        }
        with (
            service_process("ingest.server", "ingest", ingest_env(state / "ingest-lake")) as ingest,
            service_process("inference.server", "inference", inference_env) as inference,
        ):
            metrics_port = free_port()
            gateway_env = {
                "WAVEPOD_GATEWAY_INGEST": ingest.address,
                "WAVEPOD_GATEWAY_INFERENCE": inference.address,
                "WAVEPOD_GATEWAY_FEATURE_SERVICE": feature.address,
                "WAVEPOD_GATEWAY_AUTH_TOKENS_FILE": str(tokens),
                "WAVEPOD_GATEWAY_PREDICTION_LOG_DIR": str(state / "prediction-log"),
                "WAVEPOD_GATEWAY_RATE_LIMIT_PER_SECOND": "50",
                "WAVEPOD_GATEWAY_PREDICTION_LOG_SHIP_SECONDS": "0.5",
                "WAVEPOD_GATEWAY_AUDIT_LOG": str(state / "audit.jsonl"),
                **_telemetry("gateway", receiver),
                "WAVEPOD_GATEWAY_METRICS_PORT": str(metrics_port),
                "WAVEPOD_GATEWAY_COST_PER_HOUR": "3.5",
                "WAVEPOD_GATEWAY_COST_PER_1K_FORECAST": "0.02",
            }
            with service_process("gateway.server", "gateway", gateway_env) as gateway:
                yield Stack(
                    gateway,
                    training,
                    model.signature,
                    model.expected,
                    state / "prediction-log",
                    ingest.address,
                    receiver,
                    f"http://127.0.0.1:{metrics_port}/metrics",
                )


def _stub(stack: Stack) -> gateway_pb2_grpc.GatewayServiceStub:
    return gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(stack.gateway.address))


def _auth(token: str = "alice-token") -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def _rows(frame: pl.DataFrame, names: list[str]) -> list[values_pb2.Row]:
    return [
        values_pb2.Row(values={k: to_value(v) for k, v in row.items() if v is not None})
        for row in frame.select(names).to_dicts()
    ]


def _violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    request = error_details_pb2.BadRequest()
    status.details[0].Unpack(request)
    return {v.field: v.description for v in request.field_violations}


def test_inline_rows_get_the_models_predictions(stack: Stack) -> None:
    sample = stack.training.head(50)
    reply = _stub(stack).Predict(
        gateway_pb2.PredictRequest(rows=_rows(sample, stack.signature.names), request_id="r1"),
        metadata=_auth(),
        timeout=10,
    )
    values = np.array([p.value for p in reply.predictions])
    np.testing.assert_allclose(values, stack.expected[:50], rtol=1e-5, atol=1e-3)
    assert (reply.model.name, reply.model.version, reply.request_id) == ("refill", "1", "r1")
    assert len(reply.trace_id) == 32 and len({p.prediction_id for p in reply.predictions}) == 50


def test_entity_ids_are_predicted_from_the_online_store(stack: Stack) -> None:
    entities = stack.training["rx_id"].unique().sort().head(20).to_list()
    reply = _stub(stack).Predict(
        gateway_pb2.PredictRequest(entity_ids=entities), metadata=_auth(), timeout=10
    )
    assert [p.entity_id for p in reply.predictions] == entities
    assert all(0 < p.value < 400 for p in reply.predictions)
    with pytest.raises(grpc.RpcError) as missing:
        _stub(stack).Predict(
            gateway_pb2.PredictRequest(entity_ids=["RX-nope"]), metadata=_auth(), timeout=10
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND and "RX-nope" in (
        missing.value.details() or ""
    )


def test_one_trace_runs_from_the_client_through_feature_and_inference(stack: Stack) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    entities = stack.training["rx_id"].unique().sort().head(3).to_list()
    with provider.get_tracer("client").start_as_current_span("client predict") as client:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # W3C traceparent, as any instrumented client sends it
        reply = _stub(stack).Predict(
            gateway_pb2.PredictRequest(entity_ids=entities),
            metadata=(*_auth(), *carrier.items()),
            timeout=10,
        )
    trace_id = format(client.get_span_context().trace_id, "032x")
    client_id = format(client.get_span_context().span_id, "016x")
    assert [s.name for s in exporter.get_finished_spans()] == ["client predict"]
    assert reply.trace_id == trace_id  # the caller can quote it to on-call

    def hops() -> dict[str, ReceivedSpan]:
        spans = [s for s in stack.telemetry.spans if s.trace_id == trace_id]
        return {f"{s.service} {s.name}": s for s in spans}

    wanted = {
        "wavepod-gateway /wavepod.gateway.v1.GatewayService/Predict",
        "wavepod-gateway /wavepod.feature.v1.FeatureService/GetOnlineFeatures",
        "wavepod-feature /wavepod.feature.v1.FeatureService/GetOnlineFeatures",
        "wavepod-gateway infer refill",
        "wavepod-inference /inference.GRPCInferenceService/ModelInfer",
        "wavepod-inference onnxruntime refill:1",
    }
    deadline = time.monotonic() + 15
    while not wanted <= hops().keys() and time.monotonic() < deadline:
        time.sleep(0.1)
    spans = hops()
    assert wanted <= spans.keys(), sorted(spans)
    by_id = {s.span_id: s for s in spans.values()}
    assert (
        spans["wavepod-gateway /wavepod.gateway.v1.GatewayService/Predict"].parent_span_id
        == client_id
    )
    # Each hop between processes is a parent link carried in gRPC metadata.
    for served, caller in (
        ("wavepod-feature /wavepod.feature.v1.FeatureService/GetOnlineFeatures", "wavepod-gateway"),
        ("wavepod-inference /inference.GRPCInferenceService/ModelInfer", "wavepod-gateway"),
    ):
        assert by_id[spans[served].parent_span_id].service == caller, served
    # And every span of the trace descends from the client's.
    for span in spans.values():
        hop = span
        while hop.parent_span_id in by_id:
            hop = by_id[hop.parent_span_id]
        assert hop.parent_span_id == client_id, span


def test_prometheus_reads_request_and_model_metrics(stack: Stack) -> None:
    sample = stack.training.head(7)
    _stub(stack).Predict(
        gateway_pb2.PredictRequest(rows=_rows(sample, stack.signature.names)),
        metadata=_auth(),
        timeout=10,
    )
    samples = scrape(
        stack.metrics_url, {"model", "route", "version", "rpc_method", "rpc_grpc_status_code"}
    )
    champion = (("model", "refill"), ("route", "champion"), ("version", "1"))
    assert samples[("wavepod_predictions_total", champion)] >= 7
    assert samples[("wavepod_prediction_value_days_count", champion)] >= 7
    assert samples[("wavepod_serving_cost_per_hour", ())] == 3.5
    assert samples[("wavepod_serving_cost_per_1k_forecast", ())] == 0.02
    predict = (
        ("rpc_grpc_status_code", "OK"),
        ("rpc_method", "/wavepod.gateway.v1.GatewayService/Predict"),
    )
    assert samples[("rpc_server_duration_milliseconds_count", predict)] >= 1


def test_bad_requests_get_field_level_errors(stack: Stack) -> None:
    stub = _stub(stack)
    good = _rows(stack.training.head(1), stack.signature.names)[0]
    bad = values_pb2.Row()
    bad.CopyFrom(good)
    bad.values["days_supply"].CopyFrom(to_value(10_000))
    bad.values["channel"].CopyFrom(to_value("drone"))
    bad.values["colour"].CopyFrom(to_value("red"))
    with pytest.raises(grpc.RpcError) as invalid:
        stub.Predict(gateway_pb2.PredictRequest(rows=[good, bad]), metadata=_auth(), timeout=10)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = _violations(invalid.value)
    assert set(fields) == {"rows[1].days_supply", "rows[1].channel", "rows[1].colour"}
    assert "training range" in fields["rows[1].days_supply"]

    with pytest.raises(grpc.RpcError) as both:
        stub.Predict(
            gateway_pb2.PredictRequest(rows=[good], entity_ids=["RX1"]),
            metadata=_auth(),
            timeout=10,
        )
    assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Predict(
            gateway_pb2.PredictRequest(model=refs_pb2.ModelRef(name="nope"), rows=[good]),
            metadata=_auth(),
            timeout=10,
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_callers_need_a_known_token_with_the_predict_role(stack: Stack) -> None:
    stub = _stub(stack)
    request = gateway_pb2.PredictRequest(entity_ids=["RX1"])
    for metadata, code in (
        ((), grpc.StatusCode.UNAUTHENTICATED),
        # A token no one holds; revoking a live one, without a restart, is tested where
        # every service's auth lives (wavepod/runtime/server_test.py).
        (_auth("made-up"), grpc.StatusCode.UNAUTHENTICATED),
        (_auth("bob-token"), grpc.StatusCode.PERMISSION_DENIED),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, metadata=metadata, timeout=10)
        assert refused.value.code() == code


def test_a_caller_over_its_rate_limit_is_told_to_back_off(stack: Stack) -> None:
    stub = _stub(stack)
    request = gateway_pb2.PredictRequest(rows=_rows(stack.training.head(1), stack.signature.names))
    codes = []
    for _ in range(120):
        try:
            stub.Predict(request, metadata=_auth("carol-token"), timeout=10)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and codes[0] == grpc.StatusCode.OK
    # Another caller is not limited by carol's burst.
    stub.Predict(request, metadata=_auth(), timeout=10)


def test_predict_stream_answers_in_order(stack: Stack) -> None:
    rows = _rows(stack.training.head(3), stack.signature.names)
    requests = [
        gateway_pb2.PredictRequest(rows=[row], request_id=f"s{i}") for i, row in enumerate(rows)
    ]
    replies = list(_stub(stack).PredictStream(iter(requests), metadata=_auth(), timeout=10))
    assert [r.request_id for r in replies] == ["s0", "s1", "s2"]
    np.testing.assert_allclose(
        [r.predictions[0].value for r in replies], stack.expected[:3], atol=1e-3
    )


def test_a_streams_requests_share_micro_batches_and_answer_in_order(stack: Stack) -> None:
    n = 20
    rows = _rows(stack.training.head(n), stack.signature.names)
    requests = [
        gateway_pb2.PredictRequest(rows=[row], request_id=f"b{i}") for i, row in enumerate(rows)
    ]
    replies = list(
        _stub(stack).PredictStream(iter(requests), metadata=_auth("dave-token"), timeout=10)
    )
    assert [r.request_id for r in replies] == [f"b{i}" for i in range(n)]
    np.testing.assert_allclose(
        [r.predictions[0].value for r in replies], stack.expected[:n], atol=1e-3
    )

    # Each inference call the stream made links every request it served but its first:
    # computed one at a time, no call would serve two.
    def calls() -> list[ReceivedSpan]:
        return [
            s
            for s in stack.telemetry.spans
            if s.trace_id == replies[0].trace_id and s.name == "infer refill"
        ]

    deadline = time.monotonic() + 15
    while sum(1 + len(c.links) for c in calls()) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sum(1 + len(c.links) for c in calls()) == n
    assert len(calls()) < n, "no inference call served two of the stream's requests"


def test_concurrent_entity_lookups_share_feature_calls_and_keep_their_own_errors(
    stack: Stack,
) -> None:
    entities = stack.training["rx_id"].unique().sort().head(20).to_list()
    requests = [
        gateway_pb2.PredictRequest(entity_ids=[e], request_id=f"f{i}")
        for i, e in enumerate(entities)
    ]
    replies = list(
        _stub(stack).PredictStream(iter(requests), metadata=_auth("dave-token"), timeout=10)
    )
    assert [r.predictions[0].entity_id for r in replies] == entities

    # Each online-feature call links every request it served but its first.
    def calls() -> list[ReceivedSpan]:
        return [
            s
            for s in stack.telemetry.spans
            if s.trace_id == replies[0].trace_id and s.name.startswith("features ")
        ]

    deadline = time.monotonic() + 15
    while sum(1 + len(c.links) for c in calls()) < len(entities) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sum(1 + len(c.links) for c in calls()) == len(entities)
    assert len(calls()) < len(entities), "no feature call served two requests"

    # An entity the store lacks fails its own request, not those sharing its call.
    asked = [[e] for e in entities[:8]] + [["RX-nope"]] + [[e] for e in entities[8:16]]
    futures = [
        _stub(stack).Predict.future(
            gateway_pb2.PredictRequest(entity_ids=ids), metadata=_auth(), timeout=10
        )
        for ids in asked
    ]
    for ids, future in zip(asked, futures, strict=True):
        if ids == ["RX-nope"]:
            assert future.exception().code() == grpc.StatusCode.NOT_FOUND
        else:
            assert [p.entity_id for p in future.result().predictions] == ids


def test_a_bad_request_ends_a_stream_after_every_earlier_answer(stack: Stack) -> None:
    rows = _rows(stack.training.head(10), stack.signature.names)
    bad = values_pb2.Row()
    bad.CopyFrom(rows[5])
    bad.values["channel"].CopyFrom(to_value("drone"))
    rows[5] = bad
    requests = [
        gateway_pb2.PredictRequest(rows=[row], request_id=f"e{i}") for i, row in enumerate(rows)
    ]
    answered = []
    with pytest.raises(grpc.RpcError) as invalid:
        for reply in _stub(stack).PredictStream(
            iter(requests), metadata=_auth("dave-token"), timeout=10
        ):
            answered.append(reply.request_id)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(_violations(invalid.value)) == {"rows[0].channel"}
    assert answered == [f"e{i}" for i in range(5)]


def test_feedback_lands_in_ingest_once_per_call(stack: Stack) -> None:
    stub = _stub(stack)
    first = stub.SubmitFeedback(
        gateway_pb2.SubmitFeedbackRequest(prediction_id="p-1", observed_value=31.0),
        metadata=_auth("bob-token"),
        timeout=10,
    )
    when = Timestamp()
    when.FromSeconds(1_700_000_000)
    second = stub.SubmitFeedback(
        gateway_pb2.SubmitFeedbackRequest(entity_id="RX1", event_time=when, observed_value=28.0),
        metadata=_auth("bob-token"),
        timeout=10,
    )
    assert first.feedback_id and second.feedback_id != first.feedback_id
    with pytest.raises(grpc.RpcError) as invalid:
        stub.SubmitFeedback(
            gateway_pb2.SubmitFeedbackRequest(observed_value=1.0), metadata=_auth("bob-token")
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "prediction_id" in _violations(invalid.value)
    with pytest.raises(grpc.RpcError) as denied:  # alice may predict, not report outcomes
        stub.SubmitFeedback(
            gateway_pb2.SubmitFeedbackRequest(prediction_id="p-2", observed_value=1.0),
            metadata=_auth(),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    landed = _landed(stack, "prediction_feedback").sort("observed_value")
    assert landed["feedback_id"].to_list() == [second.feedback_id, first.feedback_id]
    assert landed["caller"].to_list() == ["bob", "bob"]
    assert landed["prediction_id"].to_list() == [None, "p-1"]

    # A burst of outcomes: every call answered lands exactly once, and concurrent calls
    # share ingest streams (group commit) instead of costing one lake commit each.
    def submit(i: int) -> str:
        reply = stub.SubmitFeedback(
            gateway_pb2.SubmitFeedbackRequest(prediction_id=f"burst-{i}", observed_value=100.0 + i),
            metadata=_auth("bob-token"),
            timeout=30,
        )
        return str(reply.feedback_id)

    burst = 24
    with ThreadPoolExecutor(max_workers=burst) as pool:
        answered = list(pool.map(submit, range(burst)))
    landed = _landed(stack, "prediction_feedback")
    assert landed.height == 2 + burst
    assert set(landed["feedback_id"]) == {first.feedback_id, second.feedback_id, *answered}
    assert _commits(stack, "prediction_feedback") <= 2 + burst // 2

    # An operator tightens the dataset (a new major version with a plausibility range):
    # in a burst, the outcomes that break it are refused, each to its own caller, and
    # the others land once, though they shared streams with refused ones.
    stricter = ingest_pb2.Schema()
    stricter.CopyFrom(FEEDBACK_SCHEMA)
    stricter.version = "2.0"
    stricter.rules.append(
        ingest_pb2.QualityRule(
            id="plausible", kind="range", column="observed_value", params={"max": "1000"}
        )
    )
    _register(stack, stricter)

    def outcome(i: int) -> str:
        try:
            return submit(i)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "plausible" in (error.details() or "")  # the rule it broke
            return "refused"

    def burst_with_implausible(every: int) -> None:
        """A burst in which every `every`-th outcome is implausible: exactly those are
        refused, and each accepted one lands once."""
        before = _landed(stack, "prediction_feedback").height
        time.sleep(1)  # bob's rate-limit bucket refills after the burst before
        with ThreadPoolExecutor(max_workers=burst) as pool:
            values = [i if i % every else 5_000 + i for i in range(burst)]
            answers = list(pool.map(outcome, values))
        assert [a == "refused" for a in answers] == [i % every == 0 for i in range(burst)]
        landed = _landed(stack, "prediction_feedback")
        accepted = {a for a in answers if a != "refused"}
        assert accepted <= set(landed["feedback_id"])
        assert landed.height == before + len(accepted)

    burst_with_implausible(every=3)

    # A tolerant version (half of a stream's rows may break a rule): a shared stream now
    # commits with its implausible outcomes quarantined instead of failing. Those go again
    # alone and are refused by the rule; the rest of the stream landed once.
    tolerant = ingest_pb2.Schema()
    tolerant.CopyFrom(stricter)
    tolerant.version = "2.1"
    tolerant.max_bad_row_ratio = 0.5
    _register(stack, tolerant)

    def quarantining_commits() -> int:
        records = _lineage(stack, "prediction_feedback").records
        return sum(1 for r in records if int(r.attributes["rows_quarantined"]) > 0)

    burst_with_implausible(every=6)
    assert quarantining_commits() >= 1  # the shared-stream path this burst is about


def _register(stack: Stack, schema: ingest_pb2.Schema) -> None:
    with grpc.insecure_channel(stack.ingest) as channel:
        ingest_pb2_grpc.IngestServiceStub(channel).RegisterSchema(
            ingest_pb2.RegisterSchemaRequest(schema=schema), timeout=10
        )


def _lineage(stack: Stack, dataset: str) -> ingest_pb2.GetLineageResponse:
    with grpc.insecure_channel(stack.ingest) as channel:
        return ingest_pb2_grpc.IngestServiceStub(channel).GetLineage(
            ingest_pb2.GetLineageRequest(dataset=refs_pb2.DatasetRef(name=dataset)), timeout=10
        )


def _landed(stack: Stack, dataset: str) -> pl.DataFrame:
    lineage = _lineage(stack, dataset)
    return pl.read_parquet([f for record in lineage.records for f in record.output_files])


def _commits(stack: Stack, dataset: str) -> int:
    """Batches that landed rows in `dataset`."""
    return sum(1 for record in _lineage(stack, dataset).records if record.output_files)


def test_a_spool_file_sent_again_lands_nothing_twice(stack: Stack, tmp_path: Path) -> None:
    """A crash after ingest took a file but before the gateway moved it: the file goes
    again, and ingest drops every record by its id."""
    answer = _stub(stack).Predict(
        gateway_pb2.PredictRequest(
            rows=_rows(stack.training.head(3), stack.signature.names), request_id="resend"
        ),
        metadata=_auth(),
        timeout=10,
    )
    # Once this request's records have landed, so has everything spooled before them and
    # nothing else is on its way: the lake stays as it is unless the resend adds to it.
    ids = {p.prediction_id for p in answer.predictions}
    deadline = time.monotonic() + 20
    while not ids <= set(_landed(stack, DATASET)["prediction_id"].to_list()):
        assert time.monotonic() < deadline, "the records did not land within 20 s"
        time.sleep(0.2)
    shipped = sorted(stack.log_dir.glob(f"{SHIPPED}/date=*/*.jsonl"))[0]
    before = _landed(stack, DATASET)
    spool = tmp_path / "spool" / shipped.parent.name
    spool.mkdir(parents=True)
    shutil.copy(shipped, spool / shipped.name)

    async def resend() -> int:
        async with grpc.aio.insecure_channel(stack.ingest) as channel:
            shipper = LogShipper(tmp_path / "spool", IngestClient(channel, 30.0), 60.0)
            return await shipper.ship()

    assert asyncio.run(resend()) == len(shipped.read_text().splitlines()) > 0
    after = _landed(stack, DATASET)
    assert after.height == before.height
    assert after["record_id"].n_unique() == after.height


def test_zz_sigterm_flushes_a_record_for_every_answered_prediction(stack: Stack) -> None:
    """Runs last (module order): it stops the gateway."""
    answered = 0
    stub = _stub(stack)
    rows = _rows(stack.training.head(5), stack.signature.names)
    request = gateway_pb2.PredictRequest(rows=rows, request_id="burst")
    futures = [stub.Predict.future(request, metadata=_auth(), timeout=20) for _ in range(40)]
    time.sleep(0.05)
    assert stack.gateway.terminate(timeout=30) == 0
    for future in futures:
        with contextlib.suppress(grpc.RpcError):  # refused once the drain began
            answered += len(future.result().predictions)
    logged = [
        json.loads(line)
        for path in stack.log_dir.rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert not list(stack.log_dir.rglob("*.tmp"))
    ids = {r["prediction_id"] for r in logged}
    assert len(ids) == len(logged)  # nothing twice
    burst = [r for r in logged if r["request_id"] == "burst"]
    assert answered > 0 and len(burst) == answered
    assert {"model", "version", "inputs", "prediction", "latency_ms", "trace_id"} <= set(logged[-1])
    # The shutdown shipped the rest: every record is in the lake, once.
    assert not list(stack.log_dir.glob("date=*/*.jsonl"))
    landed = _landed(stack, DATASET)
    assert landed["record_id"].n_unique() == landed.height
    assert set(landed["record_id"]) == {f"{r['prediction_id']}/{r['route']}" for r in logged}
    burst_landed = landed.filter(pl.col("request_id") == "burst")
    assert burst_landed.height == answered
    assert len(json.loads(burst_landed["inputs"][0]).keys() & set(stack.signature.names)) > 0
