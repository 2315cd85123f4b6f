"""One loaded model version: an ONNX Runtime session and the config it was loaded with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from tritonclient.grpc import model_config_pb2 as mc

from inference.repository import datatype_name

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# ONNX Runtime's CUDA provider has no kernels for the ai.onnx.ml operators (tree
# ensembles, encoders): such models run on CPU even on a GPU box.
CPU_ONLY_DOMAIN = "ai.onnx.ml"

NUMPY_TYPES = {
    "FP32": np.float32,
    "FP64": np.float64,
    "INT64": np.int64,
    "INT32": np.int32,
    "BOOL": np.bool_,
}


@dataclass(frozen=True)
class Placement:
    provider: str
    reason: str


def choose_placement(model: onnx.ModelProto, prefer: str, available: list[str]) -> Placement:
    """Where a model runs: CUDA when asked for (or auto) and possible, else CPU, with why."""
    if prefer == "cpu":
        return Placement(CPU, "CPU requested by configuration")
    if CUDA not in available:
        return Placement(CPU, "no CUDA execution provider in this ONNX Runtime")
    ml_ops = sorted({n.op_type for n in model.graph.node if n.domain == CPU_ONLY_DOMAIN})
    if ml_ops:
        return Placement(
            CPU, f"{', '.join(ml_ops)} ({CPU_ONLY_DOMAIN}) have no CUDA kernels: runs on CPU"
        )
    return Placement(CUDA, "CUDA execution provider available")


class OnnxModel:
    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        config: mc.ModelConfig,
        prefer: str = "auto",
        intra_op_threads: int = 1,
    ) -> None:
        self.name = name
        self.version = version
        self.config = config
        proto = onnx.load(str(path))
        self.placement = choose_placement(proto, prefer, ort.get_available_providers())
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            proto.SerializeToString(), options, providers=[self.placement.provider]
        )
        running = self.session.get_providers()[0]
        if running != self.placement.provider:
            # ONNX Runtime logs why and falls back to CPU (e.g. a CUDA build on a host
            # without the CUDA or cuDNN libraries, or without a device): say where it runs.
            self.placement = Placement(
                running, f"{self.placement.provider} could not start (see the log): runs on CPU"
            )
        self.input_types = {t.name: datatype_name(t.data_type) for t in config.input}
        self.output_names = [t.name for t in config.output]
        self._check_config_matches_graph()

    def _check_config_matches_graph(self) -> None:
        graph_inputs = {i.name for i in self.session.get_inputs()}
        graph_outputs = {o.name for o in self.session.get_outputs()}
        missing = (set(self.input_types) - graph_inputs) | (set(self.output_names) - graph_outputs)
        if missing:
            raise ValueError(f"config names tensors the ONNX graph lacks: {sorted(missing)}")

    def effective_config(self) -> mc.ModelConfig:
        """The config as served, with where it runs (as Triton reports its own)."""
        config = mc.ModelConfig()
        config.CopyFrom(self.config)
        kind = (
            mc.ModelInstanceGroup.KIND_GPU
            if self.placement.provider == CUDA
            else mc.ModelInstanceGroup.KIND_CPU
        )
        for group in config.instance_group:
            group.kind = kind
        config.parameters["execution_provider"].string_value = self.placement.provider
        config.parameters["execution_provider_reason"].string_value = self.placement.reason
        return config

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, dict(inputs))
        return dict(zip(self.output_names, outputs, strict=True))
