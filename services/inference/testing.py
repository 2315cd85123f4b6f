"""Helpers for inference tests and benchmarks: a real tree model, published for real."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from inference.repository import ModelRepository, PublishSpec, TensorSpec
from trainer.export import to_onnx
from trainer.search import fit

FEATURES = 8
INPUT, OUTPUT = "features", "prediction"


@dataclass(frozen=True)
class TreeModel:
    proto: onnx.ModelProto
    sample: np.ndarray  # float32 [rows, FEATURES]
    expected: np.ndarray  # the native model's predictions on `sample`


def tree_model(seed: int = 0, trees: int = 60) -> TreeModel:
    """A LightGBM regressor on synthetic data, exported as the trainer exports models."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, FEATURES)).astype(np.float32)
    y = 3 * x[:, 0] - 2 * x[:, 1] * x[:, 2] + rng.normal(size=3000) + seed * 10
    model = fit({"n_estimators": trees, "num_leaves": 15}, x, y, seed)
    sample = x[:256]
    expected = np.asarray(model.predict(sample))
    return TreeModel(to_onnx(model, FEATURES, INPUT, OUTPUT), sample, expected)


def broken_model() -> TreeModel:
    """A model that loads and serves but answers NaN for every row: a deliberately broken
    challenger (its checksum is fine; its numbers are not)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, FEATURES])
    y = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [None, 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1], [float("nan")])
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", [INPUT, "axes"], ["total"], keepdims=1),
            helper.make_node("Mul", ["total", "nan"], [OUTPUT]),
        ],
        "broken",
        [x],
        [y],
        [axes, nan],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    proto.ir_version = 8
    sample = np.zeros((4, FEATURES), dtype=np.float32)
    return TreeModel(proto, sample, np.full(4, np.nan))


def spec(
    max_batch_size: int = 64,
    max_queue_delay_us: int = 0,
    instances: int = 1,
    signature_json: str = "",
) -> PublishSpec:
    """The synthetic model's publishing spec (with a signature, for gateway tests)."""
    return PublishSpec(
        inputs=(TensorSpec(INPUT, "FP32", (FEATURES,)),),
        outputs=(TensorSpec(OUTPUT, "FP32", (1,)),),
        max_batch_size=max_batch_size,
        max_queue_delay_microseconds=max_queue_delay_us,
        instance_count=instances,
        signature_json=signature_json,
    )


def publish(
    repository: ModelRepository,
    name: str,
    version: int,
    model: TreeModel,
    publish_spec: PublishSpec,
    keep_serving: bool = False,
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model.proto, str(path))
        return repository.publish(name, version, path, publish_spec, keep_serving)
