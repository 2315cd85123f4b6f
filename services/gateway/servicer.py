"""The gRPC face of the gateway: callers, rate limits and traces around the predictor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from opentelemetry import trace

from gateway import convert
from gateway.feedback import FeedbackForwarder
from gateway.limits import RateLimiter
from gateway.predictor import Predictor
from wavepod.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from wavepod.runtime import unbuilt
from wavepod.runtime.auth import current_principal
from wavepod.runtime.status import FieldViolation, InvalidArgument, ServiceError, Unavailable
from wavepod.runtime.streams import DEFAULT_STREAM_WINDOW, answer_in_order

NOT_BUILT = "not offered by the gateway"

_Base = unbuilt(
    gateway_pb2_grpc.GatewayServiceServicer,
    gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"],
    NOT_BUILT,
)


def _trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.trace_id else ""


class GatewayServicer(_Base):  # type: ignore[valid-type,misc]
    def __init__(self, limiter: RateLimiter, stream_window: int = DEFAULT_STREAM_WINDOW) -> None:
        self._limiter = limiter
        self._stream_window = stream_window
        # Set once the backends are connected (inside the server's event loop).
        self.predictor: Predictor | None = None
        self.feedback: FeedbackForwarder | None = None

    @staticmethod
    def _caller() -> str:
        principal = current_principal.get()
        return principal.name if principal else "anonymous"

    async def _predict(self, request: gateway_pb2.PredictRequest) -> gateway_pb2.PredictResponse:
        caller = self._caller()
        self._limiter.take(caller)
        predictor = self._predictor()
        trace_id = _trace_id()
        result = await predictor.predict(convert.request_from_proto(request), caller, trace_id)
        return convert.response_to_proto(result, request.request_id, trace_id)

    async def Predict(
        self, request: gateway_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PredictResponse:
        return await self._predict(request)

    async def PredictStream(
        self,
        requests: AsyncIterator[gateway_pb2.PredictRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[gateway_pb2.PredictResponse]:
        # In order, one answer per request, up to `stream_window` computed at once so a
        # stream's requests share micro-batches as concurrent unary calls do. A bad request
        # ends the stream with its status (gRPC streams carry one final status) after every
        # earlier answer; any later ones already computed are in the prediction log, as a
        # unary call's would be when its caller goes away.
        try:
            async for answer in answer_in_order(requests, self._predict, self._stream_window):
                yield answer
        except ServiceError as error:
            status = error.to_status()
            await context.abort(status.code, status.details, status.trailing_metadata)

    async def SubmitFeedback(
        self, request: gateway_pb2.SubmitFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SubmitFeedbackResponse:
        caller = self._caller()
        self._limiter.take(caller)
        if self.feedback is None:
            raise Unavailable("the gateway is starting")
        feedback_id = await self.feedback.submit(convert.feedback_from_proto(request), caller)
        return gateway_pb2.SubmitFeedbackResponse(feedback_id=feedback_id)

    def _predictor(self) -> Predictor:
        if self.predictor is None:
            raise Unavailable("the gateway is starting")
        return self.predictor

    async def GetRouting(
        self, request: gateway_pb2.GetRoutingRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.RoutingState:
        predictor = self._predictor()
        state = await predictor.router.state(request.model or predictor.default_model)
        return convert.routing_to_proto(state)

    async def SetRouting(
        self, request: gateway_pb2.SetRoutingRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.RoutingState:
        predictor = self._predictor()
        share = request.canary_share if request.HasField("canary_share") else None
        if share is not None and not 0.0 <= share <= 1.0:
            raise InvalidArgument(FieldViolation("canary_share", f"{share} is not in [0, 1]"))
        model = request.model or predictor.default_model
        predictor.router.set_policy(
            self._caller(),
            model,
            share,
            request.shadow if request.HasField("shadow") else None,
            tuple(request.resume_versions),
        )
        return convert.routing_to_proto(await predictor.router.state(model))
