"""Where the scheduler runs a call: on the event loop when it is known to be short."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from inference.batching import Scheduler
from inference.model import OnnxModel
from inference.repository import ModelRepository
from inference.testing import INPUT, OUTPUT, TreeModel, publish, spec, tree_model


@pytest.fixture(scope="module")
def trained() -> TreeModel:
    return tree_model()  # trained once: LightGBM, then the ONNX export


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, trained: TreeModel) -> OnnxModel:
    repository = ModelRepository(tmp_path_factory.mktemp("models"))
    publish(repository, "m", 1, trained, spec())
    config = repository.config("m")
    return OnnxModel("m", 1, repository.verified_model_file("m", 1, config), config)


class RecordingRuns:
    """The model's real runs, noting which thread each ran on."""

    def __init__(self, model: OnnxModel) -> None:
        self.threads: list[str] = []
        self._run = model.run

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.threads.append(threading.current_thread().name)
        return self._run(inputs)


async def _infer(scheduler: Scheduler, trained: TreeModel, rows: int) -> np.ndarray:
    inputs = {INPUT: trained.sample[:rows]}
    return (await scheduler.submit(inputs, rows))[OUTPUT]


@pytest.mark.parametrize("batching", [None, 0])
def test_a_short_call_runs_on_the_loop_once_measured(
    model: OnnxModel, trained: TreeModel, monkeypatch: pytest.MonkeyPatch, batching: int | None
) -> None:
    runs = RecordingRuns(model)
    monkeypatch.setattr(model, "run", runs)
    expected = trained.expected

    async def scenario() -> None:
        scheduler = Scheduler(model, 64, batching, inline_budget_s=1.0)
        loop_thread = threading.current_thread().name
        first = await _infer(scheduler, trained, 4)
        second = await _infer(scheduler, trained, 4)
        # A size class not seen yet is measured on a model thread first.
        third = await _infer(scheduler, trained, 40)
        await scheduler.close()
        assert runs.threads[0].startswith("m-v1") and runs.threads[2].startswith("m-v1")
        assert runs.threads[1] == loop_thread
        for got, rows in ((first, 4), (second, 4), (third, 40)):
            np.testing.assert_allclose(got.reshape(-1), expected[:rows], rtol=1e-5, atol=1e-4)

    asyncio.run(scenario())


def test_calls_longer_than_the_budget_stay_on_model_threads(
    model: OnnxModel, trained: TreeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = RecordingRuns(model)
    monkeypatch.setattr(model, "run", runs)

    async def scenario() -> None:
        # No ONNX Runtime call takes under a nanosecond: every call goes to a thread.
        scheduler = Scheduler(model, 64, None, inline_budget_s=1e-9)
        for _ in range(3):
            await _infer(scheduler, trained, 4)
        off = Scheduler(model, 64, None, inline_budget_s=0.0)
        for _ in range(3):
            await _infer(off, trained, 4)
        await scheduler.close()
        await off.close()
        assert len(runs.threads) == 6
        assert all(name.startswith("m-v1") for name in runs.threads), runs.threads

    asyncio.run(scenario())


def test_the_serving_setting_reaches_the_scheduler(tmp_path: Path, trained: TreeModel) -> None:
    from inference.serving import ModelServer, ServingOptions

    repository = ModelRepository(tmp_path)
    publish(repository, "m", 1, trained, spec())

    async def scenario() -> float:
        server = ModelServer(repository, ServingOptions(inline_compute_us=350))
        await server.load("m")
        budget = server.serving("m").inline_budget_s
        await server.unload("m")
        return budget

    assert asyncio.run(scenario()) == pytest.approx(350e-6)
