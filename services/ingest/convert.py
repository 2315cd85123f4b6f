"""Proto <-> domain conversions for the ingest contract, in one place."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import polars as pl

from ingest.catalog import Batch
from ingest.profiling import Profile
from ingest.schema import Column, ColumnType, DatasetSchema, Rule, RuleKind
from ingest.sources import SourceBatch, SourceKind, SourceSpec
from wavepod.common.v1 import refs_pb2
from wavepod.ingest.v1 import ingest_pb2
from wavepod.runtime.status import FieldViolation, InvalidArgument
from wavepod.values import from_value, to_timestamp

_TYPES = {
    ingest_pb2.COLUMN_TYPE_INT64: ColumnType.INT64,
    ingest_pb2.COLUMN_TYPE_FLOAT64: ColumnType.FLOAT64,
    ingest_pb2.COLUMN_TYPE_STRING: ColumnType.STRING,
    ingest_pb2.COLUMN_TYPE_BOOL: ColumnType.BOOL,
    ingest_pb2.COLUMN_TYPE_DATE: ColumnType.DATE,
    ingest_pb2.COLUMN_TYPE_TIMESTAMP: ColumnType.TIMESTAMP,
}
_TYPE_ENUMS = {v: k for k, v in _TYPES.items()}
_KINDS = {
    ingest_pb2.SOURCE_KIND_FILES: SourceKind.FILES,
    ingest_pb2.SOURCE_KIND_SQL: SourceKind.SQL,
    ingest_pb2.SOURCE_KIND_REST: SourceKind.REST,
}


def schema_from_proto(message: ingest_pb2.Schema) -> DatasetSchema:
    violations = []
    columns = []
    for i, c in enumerate(message.columns):
        if c.type not in _TYPES:
            violations.append(
                FieldViolation(f"schema.columns[{i}].type", "a column type is required")
            )
            continue
        columns.append(Column(c.name, _TYPES[c.type], c.nullable, c.pii, c.description))
    rules = []
    for i, r in enumerate(message.rules):
        try:
            kind = RuleKind(r.kind)
        except ValueError:
            violations.append(
                FieldViolation(
                    f"schema.rules[{i}].kind",
                    f"unknown rule kind {r.kind!r}; one of {[k.value for k in RuleKind]}",
                )
            )
            continue
        rules.append(
            Rule(
                r.id or f"{kind.value}:{r.column}", kind, r.column, tuple(sorted(r.params.items()))
            )
        )
    if violations:
        raise InvalidArgument(violations)
    return DatasetSchema(
        dataset=message.dataset,
        version=message.version,
        columns=tuple(columns),
        primary_key=tuple(message.primary_key),
        event_time_column=message.event_time_column,
        rules=tuple(rules),
        max_bad_row_ratio=(
            message.max_bad_row_ratio if message.HasField("max_bad_row_ratio") else 0.05
        ),
    )


def schema_to_proto(schema: DatasetSchema) -> ingest_pb2.Schema:
    return ingest_pb2.Schema(
        dataset=schema.dataset,
        version=schema.version,
        columns=[
            ingest_pb2.Column(
                name=c.name,
                type=_TYPE_ENUMS[c.type],
                nullable=c.nullable,
                pii=c.pii,
                description=c.description,
            )
            for c in schema.columns
        ],
        primary_key=list(schema.primary_key),
        event_time_column=schema.event_time_column,
        rules=[
            ingest_pb2.QualityRule(
                id=r.id, kind=r.kind.value, column=r.column, params=dict(r.params)
            )
            for r in schema.rules
        ],
        max_bad_row_ratio=schema.max_bad_row_ratio,
    )


def source_from_proto(message: ingest_pb2.SourceSpec) -> SourceSpec:
    if message.kind not in _KINDS:
        name = ingest_pb2.SourceKind.Name(message.kind)
        raise InvalidArgument(
            FieldViolation(
                "source.kind",
                f"{name} is not supported here; use StreamEvents for streams, or FILES, SQL, REST",
            )
        )
    if not message.dataset:
        raise InvalidArgument(FieldViolation("source.dataset", "a dataset name is required"))
    return SourceSpec(
        dataset=message.dataset,
        kind=_KINDS[message.kind],
        location=message.location,
        query=message.query,
        secret_ref=message.secret_ref,
        options=tuple(sorted(message.options.items())),
    )


def dataset_ref(batch: Batch, lake_uri: str) -> refs_pb2.DatasetRef:
    return refs_pb2.DatasetRef(
        name=batch.dataset,
        version=batch.schema_version,
        uri=f"{lake_uri}/{batch.dataset}",
        content_hash=batch.content_hash,
    )


def report_to_proto(batch: Batch, duplicate: bool, lake_uri: str) -> ingest_pb2.IngestReport:
    return ingest_pb2.IngestReport(
        batch_id=batch.batch_id,
        content_hash=batch.content_hash,
        rows_read=batch.rows_read,
        rows_landed=0 if duplicate else batch.rows_landed,
        rows_quarantined=0 if duplicate else batch.rows_quarantined,
        duplicate=duplicate,
        output=dataset_ref(batch, lake_uri),
        violations_by_rule=batch.violations,
    )


def lineage_to_proto(
    batch: Batch, lake_uri: str, file_url: Callable[[str], str]
) -> refs_pb2.LineageRecord:
    return refs_pb2.LineageRecord(
        id=batch.batch_id,
        inputs=[refs_pb2.DatasetRef(name=batch.source_id, uri=uri) for uri in batch.inputs],
        output=dataset_ref(batch, lake_uri),
        producer="ingest/RunIngest",
        created_at=to_timestamp(batch.finished_at),
        output_files=[file_url(key) for key in batch.files],
        attributes={
            "status": batch.status,
            "connector": batch.connector,
            "schema_version": batch.schema_version,
            "rows_read": str(batch.rows_read),
            "rows_landed": str(batch.rows_landed),
            "rows_quarantined": str(batch.rows_quarantined),
            "rows_duplicate": str(batch.rows_duplicate),
            "started_at": batch.started_at.isoformat(),
            "seconds": f"{(batch.finished_at - batch.started_at).total_seconds():.3f}",
            **({"error": batch.error} if batch.error else {}),
        },
    )


def events_to_source(events: list[ingest_pb2.Event], schema: DatasetSchema) -> SourceBatch:
    """A micro-batch of streamed events as a connector batch: the event id fills a
    single-column primary key and the event time the schema's event-time column when the
    payload lacks them; the hash covers the events' canonical bytes."""
    digest = hashlib.sha256()
    key = schema.primary_key[0] if len(schema.primary_key) == 1 else None
    rows = []
    for event in events:
        digest.update(event.SerializeToString(deterministic=True))
        row = {name: from_value(v) for name, v in event.payload.values.items()}
        if key and key not in row:
            row[key] = event.event_id
        if (
            schema.event_time_column
            and schema.event_time_column not in row
            and event.HasField("event_time")
        ):
            row[schema.event_time_column] = event.event_time.ToDatetime()
        rows.append(row)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return SourceBatch(frame, digest.hexdigest(), (f"grpc stream ({len(events)} events)",))


def profile_to_proto(profile: Profile, report: str) -> ingest_pb2.DatasetProfile:
    return ingest_pb2.DatasetProfile(
        dataset=refs_pb2.DatasetRef(name=profile.dataset),
        row_count=profile.rows,
        scope=profile.scope,
        report_uri=report,
        columns=[
            ingest_pb2.ColumnProfile(
                column=c.column,
                type=c.dtype,
                null_fraction=c.null_fraction,
                distinct_count=c.distinct_count,
                min=c.min,
                max=c.max,
                mean=c.mean,
                stddev=c.stddev,
                quantiles=list(c.quantiles),
                type_error_fraction=c.type_error_fraction,
                null_fraction_change=c.null_fraction_change,
                mean_shift_stddevs=c.mean_shift_stddevs,
            )
            for c in profile.columns
        ],
    )
