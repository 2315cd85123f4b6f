"""Scheduling requests onto a model: Triton's dynamic batcher, or one run per request.

With dynamic batching the shared Coalescer (wavepod.runtime.batching) gathers rows; each
batch runs as one ONNX Runtime call and each caller gets its own rows back. Queue time,
compute time and batch size are recorded as OpenTelemetry histograms and in Triton's
statistics shape.

Where a call runs: one that ONNX Runtime answers within `inline_budget_s` (judged by the
fastest earlier call of a similar size) runs on the event loop; a longer one goes to one
of the model's instances (threads). Handing a call to a thread and back costs more than
a small tree ensemble's whole run: on 2 cores, unbatched single-row requests at 64 in
flight went from 1,559 to 2,243 a second without the hop (full benchmark, A/B). The
first call of each size runs on a thread, which measures it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import metrics

from inference.model import OnnxModel
from wavepod.runtime.batching import Coalescer, Waiting, row_slices

Tensors = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]

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


class Scheduler:
    def __init__(
        self,
        model: OnnxModel,
        max_batch_size: int,
        max_queue_delay_us: int | None,
        instances: int = 1,
        inline_budget_s: float = 0.0,
    ) -> None:
        """`max_queue_delay_us=None` turns batching off: every request runs on its own;
        `inline_budget_s=0` runs every call on a model thread."""
        self.model = model
        self.inline_budget_s = inline_budget_s
        # Batch size class (rows' bit length) -> the fastest run seen, in seconds per row.
        # The fastest, not an average: a run's wall time only grows with contention.
        self._seconds_per_row: dict[int, float] = {}
        self.batching = max_queue_delay_us is not None and max_batch_size > 1
        self._executor = ThreadPoolExecutor(
            max_workers=instances, thread_name_prefix=f"{model.name}-v{model.version}"
        )
        self._slots = asyncio.Semaphore(instances)
        self._coalescer: Coalescer[Tensors, Outputs] | None = (
            Coalescer(
                self._execute,
                max_batch_size,
                (max_queue_delay_us or 0) / 1e6,
                instances,
                span_name=f"onnxruntime {model.name}:{model.version}",
            )
            if self.batching
            else None
        )
        self._pending = 0
        self.stats = ModelStats()
        self._attributes = {"model": model.name, "version": str(model.version)}

    async def submit(self, inputs: Tensors, rows: int) -> Outputs:
        self._pending += 1
        try:
            if self._coalescer is not None:
                return await self._coalescer.submit(inputs, rows)
            async with self._slots:
                loop = asyncio.get_running_loop()
                waiting = Waiting(
                    inputs,
                    rows,
                    time.perf_counter(),
                    loop.create_future(),
                    otel_context.get_current(),
                )
                return (await self._execute([waiting]))[0]
        finally:
            self._pending -= 1

    async def _execute(self, batch: Sequence[Waiting[Tensors, Outputs]]) -> list[Outputs]:
        started = time.perf_counter()
        if len(batch) == 1:
            inputs = batch[0].item
        else:
            inputs = {name: np.concatenate([w.item[name] for w in batch]) for name in batch[0].item}
        rows = sum(w.rows for w in batch)
        try:
            outputs = await self._run(inputs, rows)
        except Exception:
            self._record(batch, started, rows, failed=True)
            raise
        self._record(batch, started, rows, failed=False)
        return [{k: v[rows] for k, v in outputs.items()} for rows in row_slices(batch)]

    async def _run(self, inputs: Tensors, rows: int) -> Outputs:
        size = rows.bit_length()
        known = self._seconds_per_row.get(size)
        if self.inline_budget_s and known is not None and known * rows <= self.inline_budget_s:
            outputs, seconds = _timed_run(self.model, inputs)
        else:
            loop = asyncio.get_running_loop()
            outputs, seconds = await loop.run_in_executor(
                self._executor, _timed_run, self.model, inputs
            )
        per_row = seconds / max(rows, 1)
        if known is None or per_row < known:
            self._seconds_per_row[size] = per_row
        return outputs

    def _record(
        self, batch: Sequence[Waiting[Tensors, Outputs]], started: float, rows: int, failed: bool
    ) -> None:
        now = time.perf_counter()
        compute_ns = int((now - started) * 1e9)
        s = self.stats
        s.last_inference_ms = int(time.time() * 1000)
        _compute_ms.record(compute_ns / 1e6, self._attributes)
        _batch_rows.record(rows, self._attributes)
        s.execution_count += 1
        s.batches[rows][0] += 1
        s.batches[rows][1] += compute_ns
        for w in batch:
            queue_ns = int((started - w.enqueued) * 1e9)
            _queue_ms.record(queue_ns / 1e6, self._attributes)
            total = int((now - w.enqueued) * 1e9)
            if failed:
                s.fail += 1
                s.fail_ns += total
            else:
                s.success += 1
                s.success_ns += total
                s.queue_ns += queue_ns
                s.compute_ns += compute_ns
                s.inference_count += w.rows

    async def close(self) -> None:
        """Answers every request already submitted, then stops (a version retiring)."""
        while self._pending:
            await asyncio.sleep(0.001)
        if self._coalescer is not None:
            await self._coalescer.close()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)


def _timed_run(model: OnnxModel, inputs: Tensors) -> tuple[Outputs, float]:
    started = time.perf_counter()
    outputs = model.run(inputs)
    return outputs, time.perf_counter() - started
