"""KServe v2 protos <-> numpy and the serving types: the only module that knows both."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from tritonclient.grpc import service_pb2

from inference.batching import Scheduler
from inference.model import NUMPY_TYPES
from inference.repository import datatype_name
from inference.serving import IndexEntry
from wavepod.runtime.status import FieldViolation, InvalidArgument

DATATYPES = {np.dtype(v): k for k, v in NUMPY_TYPES.items()}
# Where typed (non-raw) contents live in InferTensorContents, per datatype.
CONTENTS_FIELD = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
    "BOOL": "bool_contents",
}


def inputs_from_request(request: service_pb2.ModelInferRequest) -> dict[str, np.ndarray]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            FieldViolation(
                "raw_input_contents",
                f"has {len(raw)} entries for {len(request.inputs)} inputs",
            )
        )
    arrays = {}
    for i, tensor in enumerate(request.inputs):
        field = f"inputs[{tensor.name}]"
        dtype = NUMPY_TYPES.get(tensor.datatype)
        if dtype is None:
            raise InvalidArgument(
                FieldViolation(f"{field}.datatype", f"{tensor.datatype!r} is not supported")
            )
        shape = tuple(tensor.shape)
        values: np.ndarray
        if raw:
            values = np.frombuffer(raw[i], dtype=dtype)
        else:
            values = np.asarray(getattr(tensor.contents, CONTENTS_FIELD[tensor.datatype]), dtype)
        needed = math.prod(shape)
        if values.size != needed:
            raise InvalidArgument(
                FieldViolation(
                    f"{field}.shape", f"{list(shape)} needs {needed} values, got {values.size}"
                )
            )
        arrays[tensor.name] = values.reshape(shape)
    return arrays


def infer_response(
    request: service_pb2.ModelInferRequest,
    scheduler: Scheduler,
    outputs: Mapping[str, np.ndarray],
) -> service_pb2.ModelInferResponse:
    wanted = [o.name for o in request.outputs] or list(outputs)
    unknown = sorted(set(wanted) - set(outputs))
    if unknown:
        raise InvalidArgument(FieldViolation("outputs", f"the model has no output {unknown}"))
    response = service_pb2.ModelInferResponse(
        model_name=scheduler.model.name,
        model_version=str(scheduler.model.version),
        id=request.id,
    )
    for name in wanted:
        array = np.ascontiguousarray(outputs[name])
        response.outputs.add(name=name, datatype=DATATYPES[array.dtype], shape=array.shape)
        response.raw_output_contents.append(array.tobytes())
    return response


def metadata_response(scheduler: Scheduler) -> service_pb2.ModelMetadataResponse:
    model = scheduler.model
    config = model.config

    def tensors(specs, types):  # type: ignore[no-untyped-def]
        batch = [-1] if config.max_batch_size > 0 else []
        return [
            service_pb2.ModelMetadataResponse.TensorMetadata(
                name=t.name, datatype=types[t.name], shape=[*batch, *t.dims]
            )
            for t in specs
        ]

    output_types = {o.name: datatype_name(o.data_type) for o in config.output}
    return service_pb2.ModelMetadataResponse(
        name=model.name,
        versions=[str(model.version)],
        platform=config.platform,
        inputs=tensors(config.input, model.input_types),
        outputs=tensors(config.output, output_types),
    )


def index_response(entries: list[IndexEntry]) -> service_pb2.RepositoryIndexResponse:
    return service_pb2.RepositoryIndexResponse(
        models=[
            service_pb2.RepositoryIndexResponse.ModelIndex(
                name=e.name, version=e.version, state=e.state, reason=e.reason
            )
            for e in entries
        ]
    )


def statistics(scheduler: Scheduler) -> service_pb2.ModelStatistics:
    s = scheduler.stats
    duration = service_pb2.StatisticDuration
    return service_pb2.ModelStatistics(
        name=scheduler.model.name,
        version=str(scheduler.model.version),
        last_inference=s.last_inference_ms,
        inference_count=s.inference_count,
        execution_count=s.execution_count,
        inference_stats=service_pb2.InferStatistics(
            success=duration(count=s.success, ns=s.success_ns),
            fail=duration(count=s.fail, ns=s.fail_ns),
            queue=duration(count=s.success, ns=s.queue_ns),
            compute_infer=duration(count=s.success, ns=s.compute_ns),
        ),
        batch_stats=[
            service_pb2.InferBatchStatistics(
                batch_size=rows, compute_infer=duration(count=count, ns=ns)
            )
            for rows, (count, ns) in sorted(s.batches.items())
        ],
    )
