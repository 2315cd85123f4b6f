"""Turns handler exceptions into gRPC statuses.

Domain errors (wavepod.runtime.status) become their conventional codes; anything else
becomes INTERNAL with a logged error id.

Clients never see UNKNOWN or a stack trace; operators find the stack trace in the
logs under the error id the client was given.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from wavepod.runtime.handlers import HandlerInterceptor, wrap_handler
from wavepod.runtime.status import ServiceError

log = logging.getLogger(__name__)


class UncaughtErrorInterceptor(HandlerInterceptor):
    def handle(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        method = details.method

        @asynccontextmanager
        async def around(context: grpc.aio.ServicerContext, _request: Any) -> AsyncIterator[None]:
            try:
                yield
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise  # a deliberate status, or the client went away
            except ServiceError as error:
                status = error.to_status()
                await context.abort(status.code, status.details, status.trailing_metadata)
            except Exception:
                error_id = uuid.uuid4().hex[:16]
                log.exception(
                    "unhandled error in %s", method, extra={"error_id": error_id, "method": method}
                )
                await context.abort(
                    grpc.StatusCode.INTERNAL, f"internal error (error id {error_id})"
                )

        return wrap_handler(handler, around)
