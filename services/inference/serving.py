"""The transport-neutral data plane: which model versions serve, loading, swapping, infer.

Several versions of a model may serve at once (the config's version policy: a champion
beside its challenger); a request that names no version gets the newest, as in Triton.

A load builds and warms the new version beside the one serving, then swaps one
reference: requests already queued finish on the old version, new ones go to the new,
and none fails. A load that fails (a tampered file, a bad config) leaves the serving
version in place and is reported in the repository index.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from inference.batching import Scheduler
from inference.model import NUMPY_TYPES, OnnxModel
from inference.repository import ModelRepository, served_versions
from wavepod.runtime.status import FailedPrecondition, FieldViolation, InvalidArgument, NotFound

log = logging.getLogger(__name__)

READY = "READY"
UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class ServingOptions:
    prefer_provider: str = "auto"  # auto | cpu
    intra_op_threads: int = 1
    # False turns dynamic batching off for every model, whatever its config says.
    dynamic_batching: bool = True
    # A call ONNX Runtime answers within this runs on the event loop (see batching.py).
    inline_compute_us: int = 200


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    state: str
    reason: str


class ModelServer:
    def __init__(self, repository: ModelRepository, options: ServingOptions) -> None:
        self.repository = repository
        self.options = options
        # model -> version -> scheduler: the versions its config's version policy serves.
        self._serving: dict[str, dict[int, Scheduler]] = {}
        self._failures: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def load_all(self) -> None:
        for name in self.repository.models():
            try:
                await self.load(name)
            except Exception as error:  # one bad model must not keep the others down
                log.warning("model not loaded", extra={"model": name, "error": str(error)})

    async def load(self, name: str) -> dict[int, Scheduler]:
        """(Re)loads every version the policy serves; all of them, or none: a version that
        fails leaves the previous set serving."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            try:
                config = self.repository.config(name)
                versions = served_versions(config, self.repository.versions(name))
                if not versions:
                    raise NotFound(f"model {name!r} has no version to serve under its policy")
                built: dict[int, Scheduler] = {}
                try:
                    for version in versions:
                        built[version] = await self._build(name, version, config)
                except BaseException:
                    for scheduler in built.values():
                        await scheduler.close()
                    raise
            except Exception as error:
                self._failures[name] = str(error)
                if isinstance(error, NotFound | FailedPrecondition):
                    raise
                raise FailedPrecondition(f"model {name!r} failed to load: {error}") from None
            self._failures.pop(name, None)
            old = self._serving.get(name, {})
            self._serving[name] = built
            log.info(
                "model serving",
                extra={
                    "model": name,
                    "versions": versions,
                    "provider": built[versions[-1]].model.placement.provider,
                },
            )
            for scheduler in old.values():
                await scheduler.close()
            return built

    async def _build(self, name: str, version: int, config: mc.ModelConfig) -> Scheduler:
        path = self.repository.verified_model_file(name, version, config)
        model = await asyncio.to_thread(
            OnnxModel,
            name,
            version,
            path,
            config,
            self.options.prefer_provider,
            self.options.intra_op_threads,
        )
        # One warm-up call so the first real request does not pay ORT's lazy set-up.
        await asyncio.to_thread(model.run, _zeros(model))
        batching = config.HasField("dynamic_batching") and self.options.dynamic_batching
        delay = config.dynamic_batching.max_queue_delay_microseconds if batching else None
        instances = sum(g.count or 1 for g in config.instance_group) or 1
        return Scheduler(
            model, config.max_batch_size, delay, instances, self.options.inline_compute_us / 1e6
        )

    async def unload(self, name: str) -> None:
        async with self._locks.setdefault(name, asyncio.Lock()):
            old = self._serving.pop(name, None)
            if old is None:
                raise NotFound(f"model {name!r} is not loaded")
            for scheduler in old.values():
                await scheduler.close()

    def serving(self, name: str, version: str = "") -> Scheduler:
        """The scheduler of `version`, or of the newest version serving (as Triton picks)."""
        versions = self._serving.get(name)
        if not versions:
            reason = self._failures.get(name, "not loaded")
            raise NotFound(f"model {name!r} is not ready: {reason}")
        if not version:
            return versions[max(versions)]
        scheduler = versions.get(int(version)) if version.isdigit() else None
        if scheduler is None:
            raise NotFound(
                f"model {name!r} version {version} is not ready"
                f" (serving versions {sorted(versions)})"
            )
        return scheduler

    def loaded(self) -> list[Scheduler]:
        return [s for versions in self._serving.values() for s in versions.values()]

    def index(self) -> list[IndexEntry]:
        entries: list[IndexEntry] = []
        for name in self.repository.models():
            versions = self._serving.get(name, {})
            failure = self._failures.get(name, "")
            entries.extend(IndexEntry(name, str(v), READY, failure) for v in sorted(versions))
            if not versions:
                entries.append(IndexEntry(name, "", UNAVAILABLE, failure or "not loaded"))
        return entries

    async def infer(
        self, name: str, version: str, inputs: Mapping[str, np.ndarray]
    ) -> tuple[Scheduler, dict[str, np.ndarray]]:
        scheduler = self.serving(name, version)
        rows = check_inputs(scheduler, inputs)
        return scheduler, await scheduler.submit(inputs, rows)

    async def close(self) -> None:
        for scheduler in self.loaded():
            await scheduler.close()
        self._serving.clear()


def _zeros(model: OnnxModel) -> dict[str, np.ndarray]:
    return {
        t.name: np.zeros((1, *t.dims), dtype=NUMPY_TYPES[model.input_types[t.name]])
        for t in model.config.input
    }


def check_inputs(scheduler: Scheduler, inputs: Mapping[str, np.ndarray]) -> int:
    """Rows in the request, after checking names, types and shapes against the config."""
    config = scheduler.model.config
    problems: list[FieldViolation] = []
    expected = {t.name: t for t in config.input}
    for name in sorted(set(inputs) - set(expected)):
        problems.append(FieldViolation(f"inputs[{name}]", "is not an input of the model"))
    for name in sorted(set(expected) - set(inputs)):
        problems.append(FieldViolation(f"inputs[{name}]", "is required and missing"))
    rows = {array.shape[0] if array.ndim else 0 for array in inputs.values()}
    for name, array in inputs.items():
        if name not in expected:
            continue
        want_type = NUMPY_TYPES[scheduler.model.input_types[name]]
        if array.dtype != want_type:
            problems.append(
                FieldViolation(
                    f"inputs[{name}].datatype",
                    f"is {array.dtype}, the model takes {scheduler.model.input_types[name]}",
                )
            )
        dims = tuple(expected[name].dims)
        if array.ndim != len(dims) + 1 or any(
            d not in (-1, actual) for d, actual in zip(dims, array.shape[1:], strict=False)
        ):
            problems.append(
                FieldViolation(
                    f"inputs[{name}].shape",
                    f"is {list(array.shape)}, the model takes [batch, {', '.join(map(str, dims))}]",
                )
            )
    if len(rows) > 1:
        problems.append(FieldViolation("inputs", f"disagree on the batch size: {sorted(rows)}"))
    batch = max(rows) if rows else 0
    if batch > config.max_batch_size > 0:
        problems.append(
            FieldViolation(
                "inputs", f"batch of {batch} exceeds max_batch_size {config.max_batch_size}"
            )
        )
    if batch == 0 and not problems:
        problems.append(FieldViolation("inputs", "carry no rows"))
    if problems:
        raise InvalidArgument(problems)
    return batch
