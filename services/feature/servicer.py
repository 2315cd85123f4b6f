"""The gRPC face of the feature engine: translate, run off the event loop, stream progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from feature import convert
from feature.engine import FeatureEngine
from wavepod.common.v1 import refs_pb2
from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.runtime.progress import ProgressStream


class FeatureServicer(feature_pb2_grpc.FeatureServiceServicer):
    def __init__(self, engine: FeatureEngine) -> None:
        self._engine = engine

    def _set(self, ref: feature_pb2.FeatureSetRef):  # type: ignore[no-untyped-def]
        return self._engine.feature_set(ref.name, ref.version)

    async def ListFeatureSets(
        self, request: feature_pb2.ListFeatureSetsRequest, context: grpc.aio.ServicerContext
    ) -> feature_pb2.ListFeatureSetsResponse:
        sets = self._engine.registry.all()
        return feature_pb2.ListFeatureSetsResponse(
            feature_sets=[convert.feature_set_to_proto(s) for s in sets],
            page=refs_pb2.PageResponse(total_size=len(sets)),
        )

    async def Materialize(
        self, request: feature_pb2.MaterializeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[feature_pb2.MaterializeEvent]:
        fs = self._set(request.feature_set)
        start = convert.day(request.start, request.HasField("start"))
        end = convert.day(request.end, request.HasField("end"))
        run = ProgressStream(lambda progress: self._engine.materialize(fs, start, end, progress))
        async for phase, done, total in run.events():
            yield feature_pb2.MaterializeEvent(
                progress=refs_pb2.Progress(phase=phase, done=done, total=total)
            )
        yield feature_pb2.MaterializeEvent(summary=convert.summary_to_proto(fs, run.result()))

    async def GetOnlineFeatures(
        self, request: feature_pb2.GetOnlineFeaturesRequest, context: grpc.aio.ServicerContext
    ) -> feature_pb2.GetOnlineFeaturesResponse:
        fs = self._set(request.feature_set)
        ids, names = list(request.entity_ids), list(request.features)
        # The embedded store answers in microseconds: a thread hop would cost more.
        if self._engine.online.blocking:
            found = await asyncio.to_thread(self._engine.online_features, fs, ids, names)
        else:
            found = self._engine.online_features(fs, ids, names)
        return convert.online_to_proto(fs, found, names)

    async def BuildTrainingSet(
        self, request: feature_pb2.BuildTrainingSetRequest, context: grpc.aio.ServicerContext
    ) -> feature_pb2.BuildTrainingSetResponse:
        fs = self._set(request.feature_set)
        training = await asyncio.to_thread(self._engine.training_set, fs, request.labels.uri)
        return convert.training_set_to_proto(fs, training)

    async def GetFeatureStats(
        self, request: feature_pb2.GetFeatureStatsRequest, context: grpc.aio.ServicerContext
    ) -> feature_pb2.GetFeatureStatsResponse:
        fs = self._set(request.feature_set)
        uri, stats = await asyncio.to_thread(self._engine.stats, fs, request.dataset.uri)
        return feature_pb2.GetFeatureStatsResponse(
            dataset=refs_pb2.DatasetRef(name=fs.name, version=fs.version, uri=uri),
            stats=[convert.stats_to_proto(s) for s in stats],
        )
