"""Publishing: a registered MLflow model version -> the Triton-layout model repository.

The model version's artifacts hold the ONNX file and, in the MLmodel metadata, the
trainer's `wavepod_signature`; together they make config.pbtxt (inputs, outputs,
batching, instances, checksum, signature). The repository version number is the MLflow
version number, so a Triton and this server agree on what "version 3" is.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from inference.repository import MODEL_FILE, ModelRepository, PublishSpec, TensorSpec
from wavepod.runtime.status import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from wavepod.signature import MLFLOW_METADATA_KEY, ModelSignature


@dataclass(frozen=True)
class Published:
    name: str
    version: int
    sha256: str
    path: Path


@dataclass(frozen=True)
class BatchingChoice:
    max_batch_size: int = 256
    max_queue_delay_microseconds: int = 0
    instance_count: int = 1


def publish_spec(signature: ModelSignature, batching: BatchingChoice) -> PublishSpec:
    return PublishSpec(
        inputs=(TensorSpec(signature.input_name, "FP32", (len(signature.features),)),),
        outputs=(TensorSpec(signature.output_name, "FP32", (1,)),),
        max_batch_size=batching.max_batch_size,
        max_queue_delay_microseconds=batching.max_queue_delay_microseconds,
        instance_count=batching.instance_count,
        signature_json=signature.to_json(),
    )


def publish_from_mlflow(
    repository: ModelRepository,
    tracking_uri: str,
    name: str,
    version: str,
    alias: str,
    batching: BatchingChoice,
    keep_serving: bool = False,
) -> Published:
    if not name:
        raise InvalidArgument(FieldViolation("model.name", "is required"))
    if not (version or alias):
        raise InvalidArgument(FieldViolation("model", "name a version or an alias"))
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = (
            client.get_model_version(name, version)
            if version
            else client.get_model_version_by_alias(name, alias)
        )
        with tempfile.TemporaryDirectory(prefix="wavepod-publish-") as tmp:
            local = Path(
                download_artifacts(
                    # The version's own artifact location: a models:/ URI would be resolved
                    # against the process-wide registry URI, not this client's.
                    artifact_uri=found.source,
                    dst_path=tmp,
                    tracking_uri=tracking_uri,
                )
            )
            onnx_files = sorted(local.rglob(MODEL_FILE))
            if not onnx_files:
                raise FailedPrecondition(f"{name} version {found.version} holds no {MODEL_FILE}")
            metadata = Model.load(str(onnx_files[0].parent)).metadata or {}
            if MLFLOW_METADATA_KEY not in metadata:
                raise FailedPrecondition(
                    f"{name} version {found.version} has no {MLFLOW_METADATA_KEY} in its MLmodel"
                    " metadata: was it registered by the wavepod trainer?"
                )
            signature = ModelSignature.from_json(str(metadata[MLFLOW_METADATA_KEY]))
            number = int(found.version)
            digest = repository.publish(
                name, number, onnx_files[0], publish_spec(signature, batching), keep_serving
            )
    except MlflowException as error:
        code = getattr(error, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise NotFound(f"model {name} {version or '@' + alias}: {error.message}") from None
        raise Unavailable(f"MLflow at {tracking_uri}: {error.message}") from None
    return Published(name, number, digest, repository.root / name)
