"""Gateway protos <-> the predictor's types."""

from __future__ import annotations

from datetime import UTC

from gateway.feedback import Feedback
from gateway.predictor import PredictRequest, PredictResult
from gateway.routing import RoutingState
from wavepod.common.v1 import refs_pb2
from wavepod.gateway.v1 import gateway_pb2
from wavepod.values import from_value


def request_from_proto(request: gateway_pb2.PredictRequest) -> PredictRequest:
    return PredictRequest(
        model=request.model.name,
        version=request.model.version,
        entity_ids=tuple(request.entity_ids),
        rows=tuple({k: from_value(v) for k, v in row.values.items()} for row in request.rows),
        request_id=request.request_id,
    )


def feedback_from_proto(request: gateway_pb2.SubmitFeedbackRequest) -> Feedback:
    return Feedback(
        prediction_id=request.prediction_id,
        entity_id=request.entity_id,
        event_time=(
            request.event_time.ToDatetime(tzinfo=UTC) if request.HasField("event_time") else None
        ),
        observed_value=request.observed_value,
    )


def response_to_proto(
    result: PredictResult, request_id: str, trace_id: str
) -> gateway_pb2.PredictResponse:
    return gateway_pb2.PredictResponse(
        predictions=[
            gateway_pb2.Prediction(
                prediction_id=p.prediction_id,
                entity_id=p.entity_id,
                value=p.value,
                model_version=p.version,
                route=p.route.value,
            )
            for p in result.predictions
        ],
        model=refs_pb2.ModelRef(name=result.model, version=result.version),
        trace_id=trace_id,
        request_id=request_id,
    )


def routing_to_proto(state: RoutingState) -> gateway_pb2.RoutingState:
    return gateway_pb2.RoutingState(
        model=state.model,
        champion_version=state.champion,
        challenger_version=state.challenger,
        canary_share=state.policy.canary_share,
        shadow=state.policy.shadow,
        rolled_back_versions=list(state.rolled_back),
        canary_window=gateway_pb2.CanaryWindow(
            calls=state.canary.calls,
            error_rate=state.canary.error_rate,
            p95_ms=state.canary.p95_ms,
        ),
    )
