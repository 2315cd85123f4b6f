"""Answering a request stream in order while its requests are computed concurrently.

A stream's requests computed one at a time share nothing: each waits for the previous
answer, so a client streaming rows pays a round trip per row and no batcher sees two of
them together. `answer_in_order` keeps up to `window` requests in flight (a semaphore,
released as answers are taken) and yields their answers in request order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")

# Requests of one stream in flight at once, unless a service's settings say otherwise.
DEFAULT_STREAM_WINDOW = 32


async def answer_in_order(
    requests: AsyncIterator[Request],
    answer: Callable[[Request], Coroutine[Any, Any, Answer]],
    window: int,
) -> AsyncIterator[Answer]:
    """`answer(request)` for each request, yielded in request order, with up to `window`
    computed at once. An answer's exception is raised at its turn, after every earlier
    answer; the later ones still in flight are then cancelled (window 1: one at a time)."""
    slots = asyncio.Semaphore(window)
    pending: asyncio.Queue[asyncio.Task[Answer] | None] = asyncio.Queue()

    async def read() -> None:
        try:
            async for request in requests:
                await slots.acquire()
                pending.put_nowait(asyncio.create_task(answer(request)))
        finally:
            pending.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        while (task := await pending.get()) is not None:
            try:
                result = await task
            finally:
                slots.release()
            yield result
        await reader  # a failure to read the stream is the caller's
    finally:
        _discard(reader)
        while not pending.empty():
            if (task := pending.get_nowait()) is not None:
                _discard(task)


def _discard(task: asyncio.Task[Any]) -> None:
    """Cancels work whose result nobody will take (its failure, if any, is not news)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()
