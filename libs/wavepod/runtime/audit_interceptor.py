"""Admin RPCs recorded in the audit log by the server, whatever the service.

A service lists the RPCs that change what it holds or serves (`ServiceApp.audited_methods`:
registering a source, running an ingest, loading a model); each call of one is appended,
fsynced, once it ends: who (the authenticated principal), which RPC, on what (the request
on one line, cut short), and the status it ended with. A successful reply leaves only
after its entry is written; a failed call's status can reach the caller first (gRPC
sends an abort at once). Calls refused by auth never reach it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from google.protobuf import text_format
from google.protobuf.message import Message

from wavepod.runtime.audit import AuditLog
from wavepod.runtime.auth import current_principal
from wavepod.runtime.handlers import HandlerInterceptor, wrap_handler

TARGET_CHARS = 500  # enough to name what was acted on; a model file's bytes are not


def _target(request: Any) -> str:
    if not isinstance(request, Message):
        return "(client stream)"
    text = text_format.MessageToString(request, as_one_line=True)
    return text if len(text) <= TARGET_CHARS else text[: TARGET_CHARS - 1] + "…"


class AuditInterceptor(HandlerInterceptor):
    def __init__(self, audit: AuditLog, methods: frozenset[str]) -> None:
        super().__init__()
        self._audit = audit
        self._methods = methods

    def handle(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        method = details.method
        if method not in self._methods:
            return handler

        @asynccontextmanager
        async def around(context: grpc.aio.ServicerContext, request: Any) -> AsyncIterator[None]:
            code = grpc.StatusCode.OK
            try:
                yield
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                principal = current_principal.get()
                await asyncio.to_thread(
                    self._audit.append,
                    principal.name if principal else "anonymous",
                    method.lstrip("/"),
                    _target(request),
                    {"code": code.name},
                )

        return wrap_handler(handler, around)
