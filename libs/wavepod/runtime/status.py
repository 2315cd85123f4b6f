"""Domain errors that services raise and the runtime turns into gRPC statuses.

Handlers raise these instead of touching the gRPC context, so the data plane stays
transport-neutral; `UncaughtErrorInterceptor` maps them to the conventional status
codes, with `google.rpc.BadRequest` field violations for INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class ServiceError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_status(self) -> grpc.Status:
        return rpc_status.to_status(
            status_pb2.Status(code=getattr(code_pb2, self.code.name), message=self.message)
        )


# A status travels in gRPC trailers, which clients cap at 8 KiB: name the first problems
# and count the rest rather than lose the whole answer.
MAX_VIOLATIONS = 20
MAX_MESSAGE = 1000


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation] | FieldViolation) -> None:
        found = (violations,) if isinstance(violations, FieldViolation) else tuple(violations)
        shown = [FieldViolation(v.field[:200], v.description[:200]) for v in found[:MAX_VIOLATIONS]]
        if len(found) > MAX_VIOLATIONS:
            more = len(found) - MAX_VIOLATIONS
            shown.append(FieldViolation("(more)", f"{more} more problems not listed"))
        self.violations = tuple(shown)
        message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(
            message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
        )

    def to_status(self) -> grpc.Status:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
        )
        return rpc_status.to_status(
            status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT, message=self.message, details=[detail]
            )
        )


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


def field_violations(error: grpc.RpcError) -> list[FieldViolation]:
    """Client side: the BadRequest field violations carried by an error, if any."""
    status = rpc_status.from_call(error)
    found: list[FieldViolation] = []
    for detail in status.details if status else ():
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            found += [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
    return found


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
