"""The trainer's view of the feature service: a feature set's features, and training sets."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from wavepod.feature.v1 import feature_pb2, feature_pb2_grpc
from wavepod.runtime.status import FailedPrecondition, NotFound, ServiceError, Unavailable


@dataclass(frozen=True)
class TrainingSetRef:
    uri: str
    content_hash: str
    rows: int
    definition_hash: str


class FeatureClient:
    def __init__(
        self, target: str, token: str | None, timeout: float, build_timeout: float
    ) -> None:
        self._target = target
        self._channel = grpc.insecure_channel(target)
        self._stub = feature_pb2_grpc.FeatureServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._build_timeout = build_timeout

    def _error(self, error: grpc.RpcError, what: str) -> ServiceError:
        code, details = error.code(), error.details()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return Unavailable(f"feature service at {self._target} ({what}): {details}")
        if code == grpc.StatusCode.NOT_FOUND:
            return NotFound(details or what)
        # Its refusals (bad data, a window longer than the data) are preconditions here.
        return FailedPrecondition(f"feature service ({what}) answered {code.name}: {details}")

    def feature_names(self, name: str, version: str) -> tuple[list[str], str]:
        """The feature set's feature names (in definition order) and its definition hash."""
        try:
            listed = self._stub.ListFeatureSets(
                feature_pb2.ListFeatureSetsRequest(), timeout=self._timeout, metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise self._error(error, "list feature sets") from None
        for fs in listed.feature_sets:
            if fs.ref.name == name and fs.ref.version == version:
                return [f.name for f in fs.features], fs.definition_hash
        known = sorted(f"{fs.ref.name}:{fs.ref.version}" for fs in listed.feature_sets)
        raise NotFound(f"feature set {name}:{version} is not registered; known: {known}")

    def build_training_set(self, name: str, version: str) -> TrainingSetRef:
        request = feature_pb2.BuildTrainingSetRequest(
            feature_set=feature_pb2.FeatureSetRef(name=name, version=version)
        )
        try:
            built = self._stub.BuildTrainingSet(
                request, timeout=self._build_timeout, metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise self._error(error, "build training set") from None
        return TrainingSetRef(
            built.training_set.uri,
            built.training_set.content_hash,
            built.rows,
            built.definition_hash,
        )

    def close(self) -> None:
        self._channel.close()
