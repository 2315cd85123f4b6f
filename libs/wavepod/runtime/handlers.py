"""Helpers to wrap or replace a grpc.aio method handler, whatever its streaming kind.

Streaming-response behaviours are always rebuilt as async generators: that is what
the OpenTelemetry aio interceptor (and grpc.aio itself) iterate.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

# A behaviour receives (request-or-iterator, context) and returns a response, or yields
# (or context.write()s) responses for a streaming response.
Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]
# Entered around a whole call, streams included, with the call's context and request (the
# request iterator for a client stream); may translate exceptions.
Around = Callable[[grpc.aio.ServicerContext, Any], AbstractAsyncContextManager[None]]

_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _rebuild(handler: grpc.RpcMethodHandler, behavior: Behavior) -> grpc.RpcMethodHandler:
    _, factory = _KINDS[(handler.request_streaming, handler.response_streaming)]
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def wrap_handler(handler: grpc.RpcMethodHandler, around: Around) -> grpc.RpcMethodHandler:
    """Returns `handler` with its whole call, streamed responses included, inside `around`."""
    attr, _ = _KINDS[(handler.request_streaming, handler.response_streaming)]
    behavior: Behavior = getattr(handler, attr)

    if handler.response_streaming:

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with around(context, request):
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                elif inspect.isawaitable(result):
                    await result  # a handler that uses context.write()

        return _rebuild(handler, streaming)

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with around(context, request):
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

    return _rebuild(handler, unary)


def aborting_handler(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str
) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler` that answers `code` without running it."""
    if handler.response_streaming:

        async def abort_stream(
            _request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            await context.abort(code, details)
            yield  # pragma: no cover - abort raises; this makes the function a generator

        return _rebuild(handler, abort_stream)

    async def abort(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, details)

    return _rebuild(handler, abort)


class HandlerInterceptor(grpc.aio.ServerInterceptor):
    """A server interceptor that rewrites the handler of each method it finds.

    Subclasses implement `handle(details, handler)`: return `handler` untouched, wrapped
    (`wrap_handler`) or replaced (`aborting_handler`). When the result depends only on the
    method and the handler (`per_call = False`), it is built once per method and reused:
    wrapping on every call costs a fair share of a fast RPC.
    """

    # True when `handle` reads the call itself (e.g. its metadata), so nothing is reused.
    per_call = False

    def __init__(self) -> None:
        self._built: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def handle(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if self.per_call:
            return self.handle(handler_call_details, handler)
        method = handler_call_details.method
        cached = self._built.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self.handle(handler_call_details, handler))
            self._built[method] = cached
        return cached[1]
