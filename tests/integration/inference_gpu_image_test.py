"""The inference service's GPU image (onnxruntime-gpu in place of the CPU build) runs,
and says truthfully where a model runs. This machine has no GPU and the local base no
CUDA libraries, so ONNX Runtime's CUDA provider cannot start: the model must still
serve, on CPU, with the model config saying why (on a GPU box with CUDA 13 and cuDNN 9
in the base, the same image serves on CUDA). Needs Docker, like image_health_test.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import tritonclient.grpc as triton
from integration.containers import docker, git_sha_tag, wait_serving
from onnx import TensorProto, helper

from inference.repository import ModelRepository, PublishSpec, TensorSpec
from wavepod.runtime.testing.process import free_port

IMAGE_INFO = Path("services.inference/image-gpu.docker-info.json")
GPU_PEX = Path("services.inference/server-gpu.pex")
FEATURES = 4


def linear_model(path: Path) -> np.ndarray:
    """y = x @ w: operators the CUDA provider has kernels for (unlike tree ensembles)."""
    weights = np.arange(1, FEATURES + 1, dtype=np.float32).reshape(FEATURES, 1)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, FEATURES])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor("w", TensorProto.FLOAT, [FEATURES, 1], weights.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return weights


def test_gpu_pex_carries_the_cuda_build_of_onnx_runtime_only() -> None:
    with zipfile.ZipFile(GPU_PEX) as pex:
        distributions = {n.lower() for n in json.loads(pex.read("PEX-INFO"))["distributions"]}
    assert any(d.startswith("onnxruntime_gpu-") for d in distributions), distributions
    assert not any(d.startswith("onnxruntime-") for d in distributions), distributions


def test_gpu_image_serves_and_reports_where_the_model_runs(tmp_path: Path) -> None:
    repository = ModelRepository(tmp_path / "models")
    weights = linear_model(tmp_path / "linear.onnx")
    spec = PublishSpec(
        inputs=(TensorSpec("x", "FP32", (FEATURES,)),),
        outputs=(TensorSpec("y", "FP32", (1,)),),
        max_batch_size=8,
    )
    repository.publish("linear", 1, tmp_path / "linear.onnx", spec)
    for path in [tmp_path, *tmp_path.rglob("*")]:  # readable by the image's user
        path.chmod(0o755 if path.is_dir() else 0o644)

    tag = git_sha_tag(IMAGE_INFO)
    port = free_port()
    container = docker(
        "run",
        "-d",
        "--network=host",
        "-v",
        f"{repository.root}:/models:ro",
        "-e",
        "WAVEPOD_INFERENCE_MODEL_REPOSITORY=/models",
        "-e",
        f"WAVEPOD_INFERENCE_PORT={port}",
        tag,
    )
    try:
        wait_serving(port, container, timeout=90)  # a large PEX unpacks first

        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        parameters = client.get_model_config("linear").config.parameters
        # The CUDA build offers the CUDA provider, which the model's operators allow; it
        # cannot start here, and the config says so instead of claiming a GPU.
        assert parameters["execution_provider"].string_value == "CPUExecutionProvider"
        reason = parameters["execution_provider_reason"].string_value
        assert reason.startswith("CUDAExecutionProvider could not start"), reason
        rows = np.random.default_rng(0).normal(size=(3, FEATURES)).astype(np.float32)
        tensor = triton.InferInput("x", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        answer = client.infer("linear", [tensor]).as_numpy("y")
        np.testing.assert_allclose(answer, rows @ weights, rtol=1e-5)
        client.close()
    finally:
        docker("rm", "-f", container, check=False)
