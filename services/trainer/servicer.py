"""The gRPC face of the trainer: check and start runs, stream their events, list history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from mlflow.exceptions import MlflowException

from trainer import convert
from trainer.runs import RUNNING, RunBoard
from trainer.tracking import Tracking
from wavepod.common.v1 import refs_pb2
from wavepod.runtime.status import FieldViolation, InvalidArgument, NotFound
from wavepod.trainer.v1 import trainer_pb2, trainer_pb2_grpc

MAX_PAGE = 200


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, board: RunBoard, tracking: Tracking) -> None:
        self._board = board
        self._tracking = tracking

    async def StartRun(
        self, request: trainer_pb2.StartRunRequest, context: grpc.aio.ServicerContext
    ) -> trainer_pb2.Run:
        spec = convert.spec_from_proto(request.spec)
        prepared = await asyncio.to_thread(self._board.trainer.prepare, spec)
        return convert.live_run_to_proto(self._board.start(prepared))

    async def _mlflow_run(self, run_id: str):  # type: ignore[no-untyped-def]
        if not run_id:
            raise InvalidArgument(FieldViolation("run_id", "is required"))
        try:
            return await asyncio.to_thread(self._tracking.get_run, run_id)
        except MlflowException:
            raise NotFound(f"no training run {run_id!r}") from None

    async def GetRun(
        self, request: trainer_pb2.GetRunRequest, context: grpc.aio.ServicerContext
    ) -> trainer_pb2.Run:
        live = self._board.get(request.run_id)
        if live is not None:
            return convert.live_run_to_proto(live)
        return convert.mlflow_run_to_proto(await self._mlflow_run(request.run_id))

    async def WatchRun(
        self, request: trainer_pb2.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[trainer_pb2.RunEvent]:
        live = self._board.get(request.run_id)
        if live is None:  # started by an earlier process: its final state only
            run = convert.mlflow_run_to_proto(await self._mlflow_run(request.run_id))
            yield trainer_pb2.RunEvent(
                run_id=run.run_id,
                state=run.state,
                progress=refs_pb2.Progress(phase="finished", message=run.error),
            )
            return
        async for event in self._board.watch(live):
            state = live.state if live.finished else RUNNING
            yield convert.event_to_proto(request.run_id, state, event)

    async def ListRuns(
        self, request: trainer_pb2.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> trainer_pb2.ListRunsResponse:
        size = request.page.page_size or 50
        if not 0 < size <= MAX_PAGE:
            raise InvalidArgument(FieldViolation("page.page_size", f"must be 1..{MAX_PAGE}"))
        found = await asyncio.to_thread(
            self._tracking.search_runs, request.model_name, size, request.page.page_token
        )
        runs = []
        for run in found:
            live = self._board.get(run.info.run_id)
            runs.append(
                convert.live_run_to_proto(live) if live else convert.mlflow_run_to_proto(run)
            )
        return trainer_pb2.ListRunsResponse(
            runs=runs, page=refs_pb2.PageResponse(next_page_token=found.token or "")
        )
