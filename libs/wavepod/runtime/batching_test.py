"""The Coalescer's batching rule: up to max_rows, within the queue delay, without spinning."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from wavepod.runtime.batching import Coalescer, Waiting


class Recorder:
    """An execute function that answers each item doubled and remembers the batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.left_at: list[float] = []

    async def __call__(self, batch: Sequence[Waiting[int, int]]) -> list[int]:
        self.left_at.append(time.perf_counter())
        self.batches.append([w.item for w in batch])
        await asyncio.sleep(0)
        return [w.item * 2 for w in batch]


def test_a_burst_is_split_into_batches_of_at_most_max_rows() -> None:
    async def run() -> tuple[list[int], Recorder]:
        recorder = Recorder()
        coalescer = Coalescer(recorder, max_rows=4, max_delay_s=0.05)
        answers = await asyncio.gather(*(coalescer.submit(i, 1) for i in range(10)))
        await coalescer.close()
        return answers, recorder

    answers, recorder = asyncio.run(run())
    assert answers == [i * 2 for i in range(10)]
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_lone_requests_wait_their_delay_idle_and_never_longer() -> None:
    # A delay of a few timer ticks, as serving uses: the old loop spun through all of it.
    delay, requests = 0.002, 20

    async def run() -> tuple[list[float], float, Recorder]:
        recorder = Recorder()
        coalescer = Coalescer(recorder, max_rows=64, max_delay_s=delay)
        waits = []
        cpu = time.process_time()
        for i in range(requests):
            started = time.perf_counter()
            assert await coalescer.submit(i, 1) == i * 2
            waits.append(recorder.left_at[-1] - started)
        used = time.process_time() - cpu
        await coalescer.close()
        return waits, used, recorder

    waits, cpu, recorder = asyncio.run(run())
    assert recorder.batches == [[i] for i in range(requests)]
    # Each waits for company up to the last fraction of a millisecond, never past the
    # delay; the slack covers a busy machine's scheduling.
    assert all(delay - 0.0015 <= w <= delay + 0.02 for w in waits), waits
    # Waiting is sleeping: a loop that spun through the delays would burn all of them.
    waited = sum(waits)
    assert cpu < waited / 2, f"{cpu * 1000:.1f} ms of CPU while waiting {waited * 1000:.1f} ms"


def test_without_delay_a_request_finding_the_batcher_idle_runs_in_its_own_task() -> None:
    async def run() -> tuple[list[int], list[list[int]], list[bool]]:
        batches: list[list[int]] = []
        in_caller: list[bool] = []
        callers: set[asyncio.Task[int]] = set()

        async def execute(batch: Sequence[Waiting[int, int]]) -> list[int]:
            batches.append([w.item for w in batch])
            in_caller.append(asyncio.current_task() in callers)
            await asyncio.sleep(0.01)
            return [w.item * 2 for w in batch]

        coalescer = Coalescer(execute, max_rows=64, max_delay_s=0)
        first = asyncio.create_task(coalescer.submit(0, 1))
        callers.add(first)
        await asyncio.sleep(0)  # it runs at once, holding the only slot
        rest = [asyncio.create_task(coalescer.submit(i, 1)) for i in range(1, 6)]
        callers.update(rest)
        answers = list(await asyncio.gather(first, *rest))
        # Idle again: the next lone request runs at once too.
        last = asyncio.create_task(coalescer.submit(6, 1))
        callers.add(last)
        answers.append(await last)
        await coalescer.close()
        return answers, batches, in_caller

    answers, batches, in_caller = asyncio.run(run())
    assert answers == [i * 2 for i in range(7)]
    # Those that arrived while the slot was busy shared one call, run by the batcher.
    assert batches == [[0], [1, 2, 3, 4, 5], [6]]
    assert in_caller == [True, False, True]
