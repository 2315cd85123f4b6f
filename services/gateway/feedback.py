"""SubmitFeedback: observed outcomes go to ingest as events of one governed dataset.

Each feedback is one event whose id is the feedback id, so a retried send lands once.
Concurrent submissions share one ingest stream (group commit, the runtime's Coalescer):
a call is answered once the stream that carried its event has landed, so an
acknowledged outcome is in the lake, and under load many outcomes cost one lake commit
instead of one each. The evaluator joins them with the prediction log later.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.ingest_client import IngestClient
from wavepod.common.v1 import values_pb2
from wavepod.ingest.v1 import ingest_pb2
from wavepod.runtime.batching import Coalescer, Waiting
from wavepod.runtime.status import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    ServiceError,
)
from wavepod.values import to_timestamp, to_value

DATASET = "prediction_feedback"
T = ingest_pb2
FEEDBACK_SCHEMA = T.Schema(
    dataset=DATASET,
    version="1.0",
    columns=[
        T.Column(name="feedback_id", type=T.COLUMN_TYPE_STRING),
        T.Column(name="prediction_id", type=T.COLUMN_TYPE_STRING, nullable=True),
        T.Column(name="entity_id", type=T.COLUMN_TYPE_STRING, nullable=True),
        T.Column(name="event_time", type=T.COLUMN_TYPE_TIMESTAMP, nullable=True),
        T.Column(name="observed_value", type=T.COLUMN_TYPE_FLOAT64),
        T.Column(name="caller", type=T.COLUMN_TYPE_STRING),
        T.Column(name="received_at", type=T.COLUMN_TYPE_TIMESTAMP),
    ],
    primary_key=["feedback_id"],
    event_time_column="received_at",
    rules=[T.QualityRule(id="feedback_unique", kind="unique")],
)


@dataclass(frozen=True)
class Feedback:
    prediction_id: str
    entity_id: str
    event_time: datetime | None
    observed_value: float

    def check(self) -> None:
        problems = []
        if not self.prediction_id and not (self.entity_id and self.event_time):
            problems.append(
                FieldViolation(
                    "prediction_id", "name a prediction id, or an entity id and event time"
                )
            )
        if math.isnan(self.observed_value) or math.isinf(self.observed_value):
            problems.append(FieldViolation("observed_value", "must be finite"))
        if problems:
            raise InvalidArgument(problems)


class FeedbackForwarder:
    def __init__(self, ingest: IngestClient, max_batch: int = 256) -> None:
        self._ingest = ingest
        # No queue delay: a batch forms whenever the previous stream has landed, so a
        # lone outcome waits for nothing and a burst waits for one stream.
        self._batches: Coalescer[ingest_pb2.Event, ServiceError | None] = Coalescer(
            self._send, max_batch, max_delay_s=0.0, span_name="feedback to ingest"
        )

    async def submit(self, feedback: Feedback, caller: str) -> str:
        feedback.check()
        feedback_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        payload = {
            "feedback_id": feedback_id,
            "prediction_id": feedback.prediction_id or None,
            "entity_id": feedback.entity_id or None,
            "event_time": feedback.event_time,
            "observed_value": feedback.observed_value,
            "caller": caller,
            "received_at": now,
        }
        event = T.Event(
            dataset=DATASET,
            event_id=feedback_id,
            event_time=to_timestamp(now),
            payload=values_pb2.Row(values={k: to_value(v) for k, v in payload.items()}),
        )
        if (refused := await self._batches.submit(event, 1)) is not None:
            raise refused
        return feedback_id

    async def _send(
        self, batch: Sequence[Waiting[ingest_pb2.Event, ServiceError | None]]
    ) -> list[ServiceError | None]:
        events = [w.item for w in batch]
        try:
            reply = await self._ingest.send(FEEDBACK_SCHEMA, events)
        except FailedPrecondition:  # the stream broke the dataset's quality rules
            if len(events) == 1:
                raise
        else:
            if not reply.quarantined:
                return [None] * len(events)
            if len(events) == 1:
                return [InvalidArgument(FieldViolation("feedback", "ingest quarantined it"))]
        # Ingest does not say whose events broke a rule: each goes again alone (event
        # ids land nothing twice), so each caller gets its own answer.
        answers: list[ServiceError | None] = []
        for one in batch:
            try:
                answers.extend(await self._send([one]))
            except FailedPrecondition as refused:
                answers.append(refused)
        return answers
