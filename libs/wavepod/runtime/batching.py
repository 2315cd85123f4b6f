"""Coalescing concurrent requests into batches: the one batching loop wavepod has.

Requests wait until `max_rows` rows are there or the oldest has waited `max_delay`
(Triton's dynamic-batching rule); a batch is formed only when one of `concurrency`
execution slots is free, so a busy backend batches more, not later. Forming a batch
costs a few awaits, not one per request. With no delay, a request that finds nothing
queued and a slot free runs at once in its own task: nothing could share its call, and
the hand-offs to the batching task and back are pure cost. Used by the inference server
(batches onto ONNX Runtime) and the gateway (micro-batches onto the inference service).

Each batch runs in a span of its own, the child of its first request's span and linked to
every other request's (OpenTelemetry's convention for work done for many traces), so a
request's trace continues through the batch into whatever the batch calls.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

T = TypeVar("T")
R = TypeVar("R")

# The event loop sleeps in whole milliseconds (epoll's resolution, rounded up), so a timed
# wait for the rest of the queue delay is cut to whole milliseconds: a batch never leaves
# later than its delay, and a last fraction of a millisecond is not waited at all.
# (Spinning through that fraction instead, as this loop once did, cost a core: at a 2 ms
# delay, 3.3 ms of CPU per request at concurrency 1.)
_TIMER_RESOLUTION = 0.001


@dataclass
class Waiting(Generic[T, R]):
    item: T
    rows: int
    enqueued: float
    future: asyncio.Future[R]
    context: otel_context.Context  # the submitter's trace context


# Runs a batch and returns one result per waiting request, in order.
Execute = Callable[[Sequence[Waiting[T, R]]], Awaitable[Sequence[R]]]


def row_slices(batch: Sequence[Waiting[T, R]]) -> list[slice]:
    """Where each request's rows lie among the batch's rows joined in order: how an
    execute function hands each request its share of the answer."""
    slices, offset = [], 0
    for waiting in batch:
        slices.append(slice(offset, offset + waiting.rows))
        offset += waiting.rows
    return slices


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        execute: Execute[T, R],
        max_rows: int,
        max_delay_s: float,
        concurrency: int = 1,
        span_name: str = "batch",
    ) -> None:
        self._execute = execute
        self._span_name = span_name
        self._tracer = trace.get_tracer("wavepod.runtime.batching")
        self.max_rows = max(max_rows, 1)
        self._delay = max_delay_s
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: deque[Waiting[T, R]] = deque()
        self._waiting_rows = 0
        self._arrived = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._direct = 0  # requests running at once, in their own tasks
        self._loop_task: asyncio.Task[None] | None = None

    async def submit(self, item: T, rows: int) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        waiting = Waiting(item, rows, time.perf_counter(), future, otel_context.get_current())
        if not self._delay and not self._waiting and not self._slots.locked():
            await self._slots.acquire()  # free: returns without suspending
            self._direct += 1
            try:
                await self._run([waiting])  # releases the slot
            finally:
                self._direct -= 1
            return future.result()
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._batch_loop())
        self._waiting.append(waiting)
        self._waiting_rows += rows
        self._arrived.set()
        return await future

    async def _batch_loop(self) -> None:
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            await self._slots.acquire()
            deadline = self._waiting[0].enqueued + self._delay
            while self._waiting_rows < self.max_rows:
                remaining = deadline - time.perf_counter()
                if remaining < _TIMER_RESOLUTION:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(
                        self._arrived.wait(), remaining // _TIMER_RESOLUTION * _TIMER_RESOLUTION
                    )
                except TimeoutError:
                    break
            batch: list[Waiting[T, R]] = []
            rows = 0
            # A request larger than max_rows still runs, alone.
            while self._waiting and (not batch or rows + self._waiting[0].rows <= self.max_rows):
                waiting = self._waiting.popleft()
                batch.append(waiting)
                rows += waiting.rows
            self._waiting_rows -= rows
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[Waiting[T, R]]) -> None:
        links = [
            trace.Link(context)
            for w in batch[1:]
            if (context := trace.get_current_span(w.context).get_span_context()).is_valid
        ]
        started = time.perf_counter()
        attributes = {
            "batch.requests": len(batch),
            "batch.rows": sum(w.rows for w in batch),
            "batch.queue_ms": (started - batch[0].enqueued) * 1000,
        }
        try:
            with self._tracer.start_as_current_span(
                self._span_name, context=batch[0].context, links=links, attributes=attributes
            ):
                results = await self._execute(batch)
        except Exception as error:  # the batch's callers get the error, nobody else
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
        else:
            for waiting, result in zip(batch, results, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(result)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Answers every request already submitted, then stops."""
        while self._waiting or self._running or self._direct:
            await asyncio.sleep(0.001)
        if self._loop_task is not None:
            self._loop_task.cancel()
