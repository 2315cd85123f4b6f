"""Running blocking work off the event loop while streaming its progress reports.

Server-streaming RPCs (RunIngest, Materialize, StartRun) share this: the work runs in a
thread and calls `progress(phase, done, total)`; `events()` yields those reports as they
come, and `result()` returns what the work returned (or raises what it raised).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
Report = tuple[str, int, int]
Progress = Callable[[str, int, int], None]


def no_progress(phase: str, done: int, total: int) -> None:
    """The default `Progress` of work nobody watches."""


class ProgressStream(Generic[T]):
    def __init__(self, work: Callable[[Progress], T]) -> None:
        self._work = work
        self._task: asyncio.Future[T] | None = None

    async def events(self) -> AsyncIterator[Report]:
        loop = asyncio.get_running_loop()
        reports: asyncio.Queue[Report] = asyncio.Queue()

        def progress(phase: str, done: int, total: int) -> None:
            loop.call_soon_threadsafe(reports.put_nowait, (phase, done, total))

        self._task = asyncio.ensure_future(asyncio.to_thread(self._work, progress))
        while not self._task.done() or not reports.empty():
            getter = asyncio.ensure_future(reports.get())
            await asyncio.wait({self._task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
            else:
                getter.cancel()

    def result(self) -> T:
        if self._task is None:
            raise RuntimeError("iterate events() first")
        return self._task.result()
