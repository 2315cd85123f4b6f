"""Scheduling requests onto a model: Triton's dynamic batcher, or one run per request.

With dynamic batching, requests wait in a queue until `max_batch_size` rows are there or
the oldest has waited `max_queue_delay`; the batch runs as one ONNX Runtime call on one
of the model's instances (threads) and each caller gets its own rows back. A batch is
only formed when an instance is free, so a busy model batches more, not later. Forming
a batch costs a few awaits, not one per request: at high load that is the point.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from opentelemetry import metrics

from inference.model import OnnxModel

Tensors = Mapping[str, np.ndarray]

_meter = metrics.get_meter("wavepod.inference")
_queue_ms = _meter.create_histogram(
    "inference.queue.duration", unit="ms", description="Time a request waited to be batched"
)
_compute_ms = _meter.create_histogram(
    "inference.compute.duration", unit="ms", description="ONNX Runtime time per batch"
)
_batch_rows = _meter.create_histogram(
    "inference.batch.size", unit="{row}", description="Rows per executed batch"
)


@dataclass
class ModelStats:
    """Cumulative figures in the shape of Triton's ModelStatistics (nanoseconds)."""

    success: int = 0
    success_ns: int = 0
    fail: int = 0
    fail_ns: int = 0
    queue_ns: int = 0
    compute_ns: int = 0
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    # rows per batch -> (executions, compute ns)
    batches: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))


@dataclass
class _Pending:
    inputs: Tensors
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]
    enqueued: float


class Scheduler:
    def __init__(
        self,
        model: OnnxModel,
        max_batch_size: int,
        max_queue_delay_us: int | None,
        instances: int = 1,
    ) -> None:
        """`max_queue_delay_us=None` turns batching off: every request runs on its own."""
        self.model = model
        self.max_batch_size = max(max_batch_size, 1)
        self.batching = max_queue_delay_us is not None and max_batch_size > 1
        self._delay = (max_queue_delay_us or 0) / 1e6
        self._executor = ThreadPoolExecutor(
            max_workers=instances, thread_name_prefix=f"{model.name}-v{model.version}"
        )
        self._slots = asyncio.Semaphore(instances)
        self._waiting: deque[_Pending] = deque()
        self._waiting_rows = 0
        self._arrived = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._pending = 0
        self.stats = ModelStats()
        self._attributes = {"model": model.name, "version": str(model.version)}
        self._loop_task = asyncio.create_task(self._batch_loop()) if self.batching else None

    async def submit(self, inputs: Tensors, rows: int) -> dict[str, np.ndarray]:
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        item = _Pending(inputs, rows, future, time.perf_counter())
        self._pending += 1
        try:
            if self.batching:
                self._waiting.append(item)
                self._waiting_rows += rows
                self._arrived.set()
            else:
                async with self._slots:
                    await self._execute([item])
            return await future
        finally:
            self._pending -= 1

    async def _batch_loop(self) -> None:
        while True:
            await self._slots.acquire()
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            # Triton's rule: wait for a full batch only until the oldest request has
            # waited max_queue_delay.
            deadline = self._waiting[0].enqueued + self._delay
            while self._waiting_rows < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                if remaining < 0.002:
                    # Below the event loop's timer resolution (~1 ms): one loop turn
                    # takes in whatever requests have arrived meanwhile.
                    await asyncio.sleep(0)
                    continue
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            batch: list[_Pending] = []
            rows = 0
            while self._waiting and rows + self._waiting[0].rows <= self.max_batch_size:
                item = self._waiting.popleft()
                batch.append(item)
                rows += item.rows
            self._waiting_rows -= rows
            task = asyncio.create_task(self._execute_and_release(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _execute_and_release(self, batch: list[_Pending]) -> None:
        try:
            await self._execute(batch)
        finally:
            self._slots.release()

    async def _execute(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            inputs = {
                name: np.concatenate([p.inputs[name] for p in batch]) for name in batch[0].inputs
            }
        rows = sum(p.rows for p in batch)
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._executor, self.model.run, inputs)
        except Exception as error:  # ONNX Runtime errors fail this batch's callers only
            self._record(batch, started, rows, failed=True)
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(error)
            return
        self._record(batch, started, rows, failed=False)
        offset = 0
        for p in batch:
            part = {k: v[offset : offset + p.rows] for k, v in outputs.items()}
            offset += p.rows
            if not p.future.done():
                p.future.set_result(part)

    def _record(self, batch: list[_Pending], started: float, rows: int, failed: bool) -> None:
        now = time.perf_counter()
        compute_ns = int((now - started) * 1e9)
        s = self.stats
        s.last_inference_ms = int(time.time() * 1000)
        _compute_ms.record(compute_ns / 1e6, self._attributes)
        _batch_rows.record(rows, self._attributes)
        s.execution_count += 1
        s.batches[rows][0] += 1
        s.batches[rows][1] += compute_ns
        for p in batch:
            queue_ns = int((started - p.enqueued) * 1e9)
            _queue_ms.record(queue_ns / 1e6, self._attributes)
            total = int((now - p.enqueued) * 1e9)
            if failed:
                s.fail += 1
                s.fail_ns += total
            else:
                s.success += 1
                s.success_ns += total
                s.queue_ns += queue_ns
                s.compute_ns += compute_ns
                s.inference_count += p.rows

    async def close(self) -> None:
        """Answers every request already submitted, then stops (a version retiring)."""
        while self._pending:
            await asyncio.sleep(0.001)
        if self._loop_task is not None:
            self._loop_task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
