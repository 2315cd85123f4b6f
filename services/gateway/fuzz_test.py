"""Property-based fuzzing of Predict's validation (hypothesis): whatever a client sends,
the gateway answers OK or INVALID_ARGUMENT with field-level details, never a crash."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.repository import ModelRepository
from inference.testing import publish, spec, tree_model
from wavepod.common.v1 import refs_pb2, values_pb2
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime.testing.process import service_process
from wavepod.signature import CATEGORICAL, NUMERIC, FeatureSpec, ModelSignature

# Seven numeric features and one categorical one, in the synthetic model's input order.
SIGNATURE = ModelSignature(
    (
        *(FeatureSpec(f"f{i}", NUMERIC, -10.0, 10.0, nullable=i % 2 == 0) for i in range(7)),
        FeatureSpec("channel", CATEGORICAL, nullable=False, categories=("mail", "retail")),
    ),
    label="y",
    feature_set="synthetic:1",
)
NAMES = [f.name for f in SIGNATURE.features]


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gateway_pb2_grpc.GatewayServiceStub]:
    root = tmp_path_factory.mktemp("fuzz")
    repository = ModelRepository(root / "models")
    publish(repository, "synthetic", 1, tree_model(), spec(signature_json=SIGNATURE.to_json()))
    inference_env = {"WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repository.root)}
    with service_process("inference.server", "inference", inference_env) as inference:
        gateway_env = {
            "WAVEPOD_GATEWAY_INFERENCE": inference.address,
            "WAVEPOD_GATEWAY_DEFAULT_MODEL": "synthetic",
            "WAVEPOD_GATEWAY_PREDICTION_LOG_DIR": str(root / "log"),
            "WAVEPOD_GATEWAY_MAX_ROWS": "20",
        }
        with (
            service_process("gateway.server", "gateway", gateway_env) as gateway,
            grpc.insecure_channel(gateway.address) as channel,
        ):
            yield gateway_pb2_grpc.GatewayServiceStub(channel)


def _stamp(seconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromSeconds(seconds)
    return stamp


values = st.one_of(
    st.just(values_pb2.Value()),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: values_pb2.Value(double_value=v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: values_pb2.Value(int_value=v)),
    st.text(max_size=12).map(lambda v: values_pb2.Value(string_value=v)),
    st.sampled_from(["mail", "retail"]).map(lambda v: values_pb2.Value(string_value=v)),
    st.booleans().map(lambda v: values_pb2.Value(bool_value=v)),
    st.integers(0, 2**33).map(lambda v: values_pb2.Value(timestamp_value=_stamp(v))),
)
keys = st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=10))
rows = st.dictionaries(keys, values, max_size=10).map(lambda v: values_pb2.Row(values=v))
requests = st.builds(
    gateway_pb2.PredictRequest,
    rows=st.lists(rows, max_size=25),
    entity_ids=st.one_of(st.just([]), st.lists(st.text(max_size=8), min_size=1, max_size=3)),
    model=st.one_of(
        st.just(refs_pb2.ModelRef()),
        st.builds(refs_pb2.ModelRef, name=st.sampled_from(["", "nope"])),
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests)
def test_any_request_is_answered_or_refused_with_field_details(
    stub: gateway_pb2_grpc.GatewayServiceStub, request: gateway_pb2.PredictRequest
) -> None:
    try:
        reply = stub.Predict(request, timeout=10)
    except grpc.RpcError as error:
        code = error.code()
        # Entity ids need the feature service, which this gateway has none of.
        assert code in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.UNAVAILABLE,
        ), (code, error.details())
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            status = rpc_status.from_call(error)
            assert status is not None and status.details
            details = error_details_pb2.BadRequest()
            status.details[0].Unpack(details)
            assert details.field_violations
            assert all(v.field and v.description for v in details.field_violations)
        return
    assert len(reply.predictions) == len(request.rows)
    assert not request.entity_ids
