"""Admin RPCs recorded in the audit log by the server, whatever the service.

A service lists the RPCs that change what it holds or serves (`ServiceApp.audited_methods`:
registering a source, running an ingest, loading a model); each call of one is appended,
fsynced, once it ends: who (the caller's principal), which RPC, on what (the request on
one line, cut short), and the status it ended with. Calls that auth refuses are recorded
too (who tried to act without the right is what an audit is read for), and so are the
refused calls of RPCs that record their own actions with more detail
(`ServiceApp.self_audited_methods`: promotions, routing changes).

It sits outside auth, so it names the caller from the call's token itself: the
principal, `anonymous` without a token, `unknown token` for a token no one holds (the
token is never written). A successful reply leaves only after its entry is written; a
failed call's status can reach the caller first (gRPC sends an abort at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from google.protobuf import text_format
from google.protobuf.message import Message

from wavepod.runtime.audit import AuditLog, shorten
from wavepod.runtime.auth import TokenStore, bearer_token
from wavepod.runtime.handlers import HandlerInterceptor, wrap_handler

TARGET_CHARS = 500  # enough to name what was acted on; a model file's bytes are not
# What auth answers a call it refuses (also what `wavepod audit` marks as refused).
REFUSED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def _target(request: Any) -> str:
    if not isinstance(request, Message):
        return "(client stream)"
    return shorten(text_format.MessageToString(request, as_one_line=True), TARGET_CHARS)


def _actor(tokens: TokenStore | None, metadata: Any) -> str:
    if tokens is None:  # auth is off: no one is identified
        return "anonymous"
    principal = tokens.caller(metadata)
    if principal is not None:
        return principal.name
    return "unknown token" if bearer_token(metadata) else "anonymous"


class AuditInterceptor(HandlerInterceptor):
    # Wraps the handler auth builds for each call, so nothing is reused across calls.
    per_call = True

    def __init__(
        self,
        audit: AuditLog,
        methods: frozenset[str],
        refusals_of: frozenset[str] = frozenset(),
        tokens: TokenStore | None = None,
    ) -> None:
        super().__init__()
        self._audit = audit
        self._methods = methods
        self._refusals_of = refusals_of
        self._tokens = tokens

    def handle(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        method = details.method
        every_call = method in self._methods
        if not every_call and method not in self._refusals_of:
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
                if every_call or code in REFUSED:
                    await asyncio.to_thread(
                        self._audit.append,
                        _actor(self._tokens, details.invocation_metadata),
                        method.lstrip("/"),
                        _target(request),
                        {"code": code.name},
                    )

        return wrap_handler(handler, around)
