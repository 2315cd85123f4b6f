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

Refusals cost a caller nothing, so they must not cost the service a disk: identical
refusals (same caller, RPC and code) are written once per window; the ones that follow
within it are counted and written as one entry (`repeated`) when the window closes, or
when the server stops. A flood of anonymous calls writes two entries a window, not one
fsync each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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


Refusal = tuple[str, str, str]  # actor, method, code


REPEATED_TARGET = "(the requests of repeated refusals are not kept)"


@dataclass
class _Window:
    repeated: int = 0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class AuditInterceptor(HandlerInterceptor):
    # Wraps the handler auth builds for each call, so nothing is reused across calls.
    per_call = True

    def __init__(
        self,
        audit: AuditLog,
        methods: frozenset[str],
        refusals_of: frozenset[str] = frozenset(),
        tokens: TokenStore | None = None,
        refusal_window_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        self._audit = audit
        self._methods = methods
        self._refusals_of = refusals_of
        self._tokens = tokens
        self._window_seconds = refusal_window_seconds
        self._windows: dict[Refusal, _Window] = {}
        self._writes: set[asyncio.Task[None]] = set()

    async def _append(self, refusal: Refusal, target: str, repeated: int = 0) -> None:
        actor, method, code = refusal
        detail: dict[str, Any] = {"code": code}
        if repeated:
            detail |= {"repeated": repeated, "window_seconds": self._window_seconds}
        await asyncio.to_thread(self._audit.append, actor, method.lstrip("/"), target, detail)

    async def _refused(self, refusal: Refusal, target: str) -> None:
        window = self._windows.get(refusal)
        if window is not None:  # the same refusal again within its window: counted
            window.repeated += 1
            return
        window = self._windows[refusal] = _Window()
        window.timer = asyncio.get_running_loop().call_later(
            self._window_seconds, self._close_window, refusal
        )
        await self._append(refusal, target)

    def _track(self, write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A write that runs to its end even if its call's task is cancelled (the server
        stopping right after a failed call's status went out); `close` waits for it."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return task

    def _close_window(self, refusal: Refusal) -> None:
        window = self._windows.pop(refusal)
        if window.repeated:
            self._track(self._append(refusal, REPEATED_TARGET, window.repeated))

    async def close(self) -> None:
        """On shutdown, after the drain: finishes the entries of calls whose status went
        out before their entry was written, then writes the counts of open windows."""
        await asyncio.gather(*self._writes)
        for refusal, window in list(self._windows.items()):
            if window.timer is not None:
                window.timer.cancel()
            self._close_window(refusal)
        await asyncio.gather(*self._writes)

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
                actor = _actor(self._tokens, details.invocation_metadata)
                if code in REFUSED:
                    write = self._refused((actor, method, code.name), _target(request))
                    await asyncio.shield(self._track(write))
                elif every_call:
                    write = self._append((actor, method, code.name), _target(request))
                    await asyncio.shield(self._track(write))

        return wrap_handler(handler, around)
