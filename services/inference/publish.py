"""Publishing: a registered MLflow model version -> the Triton-layout model repository.

The model version's artifacts hold the ONNX file and, in the MLmodel metadata, the
trainer's `wavepod_signature`; together they make config.pbtxt (inputs, outputs,
batching, instances, checksum, signature). The repository version number is the MLflow
version number, so a Triton and this server agree on what "version 3" is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.repository import ModelRepository, PublishSpec, TensorSpec
from wavepod.registry import fetch
from wavepod.runtime.status import FieldViolation, InvalidArgument
from wavepod.signature import ModelSignature


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
    with fetch(tracking_uri, name, version, alias) as found:
        digest = repository.publish(
            name,
            found.version,
            found.onnx_file,
            publish_spec(found.signature, batching),
            keep_serving,
        )
    return Published(name, found.version, digest, repository.root / name)
