from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from inference.model import CPU, CUDA, choose_placement
from inference.repository import CONFIG, ModelRepository, sha256_file
from inference.testing import FEATURES, publish, spec, tree_model
from wavepod.runtime.status import FailedPrecondition, NotFound


def test_published_layout_is_tritons_and_the_config_parses_as_model_config(tmp_path: Path) -> None:
    repository = ModelRepository(tmp_path)
    model = tree_model()
    digest = publish(repository, "refill", 3, model, spec(max_batch_size=128, instances=2))

    assert (tmp_path / "refill" / "3" / "model.onnx").is_file()
    config = text_format.Parse((tmp_path / "refill" / CONFIG).read_text(), mc.ModelConfig())
    assert (config.name, config.platform, config.backend) == (
        "refill",
        "onnxruntime_onnx",
        "onnxruntime",
    )
    assert config.max_batch_size == 128
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("features", mc.TYPE_FP32, [FEATURES])
    ]
    assert [(o.name, list(o.dims)) for o in config.output] == [("prediction", [1])]
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == 0  # Triton's default
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (2, mc.ModelInstanceGroup.KIND_CPU)
    ]
    assert config.parameters["sha256/3"].string_value == digest
    assert digest == sha256_file(tmp_path / "refill" / "3" / "model.onnx")

    # A second version keeps the first one's checksum; both verify.
    publish(repository, "refill", 4, tree_model(seed=1), spec())
    assert repository.versions("refill") == [3, 4]
    config = repository.config("refill")
    for version in (3, 4):
        assert repository.verified_model_file("refill", version, config).is_file()


def test_missing_and_unrecorded_versions_are_refused(tmp_path: Path) -> None:
    repository = ModelRepository(tmp_path)
    with pytest.raises(NotFound, match="not in the repository"):
        repository.config("refill")
    publish(repository, "refill", 1, tree_model(), spec())
    config = repository.config("refill")
    with pytest.raises(NotFound, match="no version 2"):
        repository.verified_model_file("refill", 2, config)
    del config.parameters["sha256/1"]
    with pytest.raises(FailedPrecondition, match="records no sha256"):
        repository.verified_model_file("refill", 1, config)
    (tmp_path / "refill" / CONFIG).write_text("max_batch_size: banana")
    with pytest.raises(FailedPrecondition, match="not a valid ModelConfig"):
        repository.config("refill")


def test_tree_models_stay_on_cpu_even_where_cuda_is_available() -> None:
    proto = tree_model().proto
    on_gpu_box = choose_placement(proto, "auto", [CUDA, CPU])
    assert on_gpu_box.provider == CPU and "TreeEnsembleRegressor" in on_gpu_box.reason
    assert choose_placement(proto, "auto", [CPU]).reason.startswith("no CUDA")
    assert choose_placement(proto, "cpu", [CUDA, CPU]).provider == CPU
