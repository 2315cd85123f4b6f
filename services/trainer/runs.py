"""Runs in flight in this process: their events for WatchRun, and a queue of one.

Training is CPU-bound, so runs execute one at a time (configurable) in worker threads;
each run's events are kept so a watcher that arrives late still sees them all.
Finished runs are read back from MLflow, which outlives this process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from trainer.runner import Prepared, RunEvent, RunResult, Trainer

log = logging.getLogger(__name__)

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"


@dataclass
class LiveRun:
    prepared: Prepared
    state: str = PENDING
    events: list[RunEvent] = field(default_factory=list)
    result: RunResult | None = None
    error: str = ""
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.state in (SUCCEEDED, FAILED)

    def add(self, event: RunEvent) -> None:
        self.events.append(event)
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class RunBoard:
    def __init__(self, trainer: Trainer, concurrent_runs: int = 1) -> None:
        self.trainer = trainer
        self._runs: dict[str, LiveRun] = {}
        self._slots = asyncio.Semaphore(concurrent_runs)
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, run_id: str) -> LiveRun | None:
        return self._runs.get(run_id)

    def start(self, prepared: Prepared) -> LiveRun:
        run = LiveRun(prepared)
        self._runs[prepared.run_id] = run
        task = asyncio.create_task(self._execute(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    async def _execute(self, run: LiveRun) -> None:
        loop = asyncio.get_running_loop()
        async with self._slots:
            run.state = RUNNING
            run.add(RunEvent("started"))

            def emit(event: RunEvent) -> None:  # called from the worker thread
                loop.call_soon_threadsafe(run.add, event)

            try:
                run.result = await asyncio.to_thread(self.trainer.execute, run.prepared, emit)
                run.state = SUCCEEDED
            except Exception as error:
                run.error = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
                run.state = FAILED
            run.ended_at = time.time()
            run.add(RunEvent(run.state.lower(), message=run.error))

    async def watch(self, run: LiveRun) -> AsyncIterator[RunEvent]:
        seen = 0
        while True:
            changed = run.changed
            while seen < len(run.events):
                yield run.events[seen]
                seen += 1
            if run.finished:
                return
            await changed.wait()

    async def wait_idle(self) -> None:
        """Shutdown: let runs in flight finish (their MLflow runs end consistently)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
