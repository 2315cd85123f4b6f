"""answer_in_order: request order kept, up to `window` computed at once, errors at their turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from wavepod.runtime.streams import answer_in_order


async def _requests(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Answerer:
    """Answers i with i * 10, later requests sooner (`slow` ones after ten seconds), and
    counts how many run at once."""

    def __init__(self, fail_at: int | None = None, slow: frozenset[int] = frozenset()) -> None:
        self.running = self.most = 0
        self.cancelled: list[int] = []
        self.fail_at = fail_at
        self.slow = slow

    async def __call__(self, i: int) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(10 if i in self.slow else 0.02 / (i + 1))
            if i == self.fail_at:
                raise ValueError(f"request {i} is bad")
            return i * 10
        except asyncio.CancelledError:
            self.cancelled.append(i)
            raise
        finally:
            self.running -= 1


async def _collect(answerer: Answerer, n: int, window: int) -> list[int]:
    return [a async for a in answer_in_order(_requests(n), answerer, window)]


@pytest.mark.parametrize("window", [1, 4, 32])
def test_answers_keep_request_order_with_at_most_window_in_flight(window: int) -> None:
    answerer = Answerer()
    answers = asyncio.run(_collect(answerer, 12, window))
    assert answers == [i * 10 for i in range(12)]
    assert answerer.most == min(window, 12)


def test_an_error_comes_at_its_turn_and_later_requests_are_cancelled() -> None:
    answerer = Answerer(fail_at=3, slow=frozenset({5}))
    answered: list[int] = []

    async def run() -> int:
        with pytest.raises(ValueError, match="request 3 is bad"):
            async for answer in answer_in_order(_requests(12), answerer, 8):
                answered.append(answer)
        await asyncio.sleep(0)  # cancellations land
        return answerer.running

    assert asyncio.run(asyncio.wait_for(run(), 5)) == 0
    assert answered == [0, 10, 20]
    assert 5 in answerer.cancelled  # in flight, not left running for its ten seconds


def test_a_failure_to_read_the_stream_is_raised_after_the_answers_before_it() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 0
        yield 1
        raise ConnectionError("the client went away")

    answered: list[int] = []

    async def collect() -> None:
        async for answer in answer_in_order(broken(), Answerer(), 4):
            answered.append(answer)

    with pytest.raises(ConnectionError):
        asyncio.run(collect())
    assert answered == [0, 10]
