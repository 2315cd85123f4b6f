"""The gRPC face of the ingest engine: translate, run off the event loop, stream progress."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

import grpc

from ingest import convert
from ingest.engine import IngestEngine
from wavepod.common.v1 import refs_pb2
from wavepod.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from wavepod.runtime.progress import ProgressStream
from wavepod.runtime.status import FieldViolation, InvalidArgument


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, engine: IngestEngine, stream_batch_size: int = 5000) -> None:
        self._engine = engine
        self._stream_batch_size = stream_batch_size
        self._lake_uri = engine.lake.uri

    async def RegisterSchema(
        self, request: ingest_pb2.RegisterSchemaRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.RegisterSchemaResponse:
        schema = convert.schema_from_proto(request.schema)
        version = await asyncio.to_thread(self._engine.register_schema, schema)
        return ingest_pb2.RegisterSchemaResponse(version=version)

    async def GetSchema(
        self, request: ingest_pb2.GetSchemaRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.Schema:
        schema = await asyncio.to_thread(self._engine.schema, request.dataset, request.version)
        return convert.schema_to_proto(schema)

    async def RegisterSource(
        self, request: ingest_pb2.RegisterSourceRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.RegisterSourceResponse:
        spec = convert.source_from_proto(request.source)
        source_id = await asyncio.to_thread(self._engine.register_source, spec)
        return ingest_pb2.RegisterSourceResponse(source_id=source_id)

    async def RunIngest(
        self, request: ingest_pb2.RunIngestRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ingest_pb2.RunIngestEvent]:
        run = ProgressStream(lambda progress: self._engine.run_ingest(request.source_id, progress))
        async for phase, done, total in run.events():
            yield ingest_pb2.RunIngestEvent(
                progress=refs_pb2.Progress(phase=phase, done=done, total=total)
            )
        batch, duplicate = run.result()  # re-raises the engine's error for the interceptor
        yield ingest_pb2.RunIngestEvent(
            report=convert.report_to_proto(batch, duplicate, self._lake_uri)
        )

    async def StreamEvents(
        self, request_iterator: AsyncIterator[ingest_pb2.Event], context: grpc.aio.ServicerContext
    ) -> ingest_pb2.StreamEventsResponse:
        """Lands events in micro-batches as they arrive; a batch that committed stays
        committed if the stream later fails, and re-sent events count as duplicates."""
        totals = ingest_pb2.StreamEventsResponse()
        pending: dict[str, list[ingest_pb2.Event]] = defaultdict(list)

        async def flush(dataset: str) -> None:
            events = pending.pop(dataset)
            schema = await asyncio.to_thread(self._engine.schema, dataset)
            source = convert.events_to_source(events, schema)
            batch, duplicate = await asyncio.to_thread(
                self._engine.land, dataset, f"stream:{dataset}", "stream", source
            )
            if duplicate:
                totals.duplicates += len(events)
                return
            totals.accepted += batch.rows_landed
            totals.duplicates += batch.rows_duplicate
            totals.quarantined += batch.rows_quarantined

        index = 0
        async for event in request_iterator:
            if not event.dataset or not event.event_id:
                missing = "dataset" if not event.dataset else "event_id"
                raise InvalidArgument(FieldViolation(f"events[{index}].{missing}", "is required"))
            pending[event.dataset].append(event)
            if len(pending[event.dataset]) >= self._stream_batch_size:
                await flush(event.dataset)
            index += 1
        for dataset in list(pending):
            await flush(dataset)
        return totals

    async def ProfileDataset(
        self, request: ingest_pb2.ProfileDatasetRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.DatasetProfile:
        profile, report = await asyncio.to_thread(
            self._engine.profile, request.dataset.name, request.batch_id
        )
        return convert.profile_to_proto(profile, report)

    async def GetLineage(
        self, request: ingest_pb2.GetLineageRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.GetLineageResponse:
        page = await asyncio.to_thread(
            self._engine.lineage_page,
            request.dataset.name,
            request.page.page_size,
            request.page.page_token,
        )
        return ingest_pb2.GetLineageResponse(
            records=[
                convert.lineage_to_proto(b, self._lake_uri, self._engine.lake.storage.url)
                for b in page.batches
            ],
            page=refs_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total),
        )

    async def ListDatasets(
        self, request: ingest_pb2.ListDatasetsRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.ListDatasetsResponse:
        names = await asyncio.to_thread(self._engine.catalog.datasets)
        refs = []
        for name in names:
            schema = await asyncio.to_thread(self._engine.schema, name)
            refs.append(
                refs_pb2.DatasetRef(
                    name=name, version=schema.version, uri=f"{self._lake_uri}/{name}"
                )
            )
        return ingest_pb2.ListDatasetsResponse(
            datasets=refs, page=refs_pb2.PageResponse(total_size=len(refs))
        )
