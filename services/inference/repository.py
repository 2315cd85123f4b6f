"""A model repository in Triton's layout, so the same directory loads in a real Triton.

    <root>/<model>/config.pbtxt            a text-format `inference.ModelConfig`
    <root>/<model>/<version>/model.onnx

Which versions serve follows the config's `version_policy`, as in Triton (latest N, all,
or specific versions). Publishing writes `specific`: the published version, plus the ones
already serving when asked to keep them (a champion beside its challenger).

The sha256 of each version's model file is recorded in the config's `parameters`
(`sha256/<version>`), which Triton keeps and ignores; this server refuses a file whose
bytes do not match. Publishing writes the version folder under a temporary name and
renames it, then replaces the config: a reader sees the old state or the new, never half.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from wavepod.runtime.status import FailedPrecondition, NotFound
from wavepod.signature import TRITON_CONFIG_PARAMETER

CONFIG = "config.pbtxt"
MODEL_FILE = "model.onnx"
PLATFORM = "onnxruntime_onnx"
SHA256_PREFIX = "sha256/"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # v2 protocol name: FP32, INT64, ...
    dims: tuple[int, ...]  # without the batch dimension


@dataclass(frozen=True)
class PublishSpec:
    """What publishing needs besides the model bytes."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int = 256
    # Triton's default: batch whatever is queued when an instance frees up; raise it to
    # trade latency at low load for bigger batches. Negative: no dynamic batching.
    max_queue_delay_microseconds: int = 0
    instance_count: int = 1
    signature_json: str = ""


def _config_type(datatype: str) -> int:
    return int(mc.DataType.Value(f"TYPE_{datatype}"))


def datatype_name(config_type: int) -> str:
    return str(mc.DataType.Name(config_type)).removeprefix("TYPE_")


def served_versions(config: mc.ModelConfig, available: Sequence[int]) -> list[int]:
    """The versions Triton would serve under the config's version policy."""
    present = sorted(available)
    policy = config.version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return present
    if kind == "specific":
        return sorted(set(policy.specific.versions) & set(present))
    latest = policy.latest.num_versions if kind == "latest" else 1
    return present[-max(latest, 1) :]


def build_config(
    name: str, spec: PublishSpec, checksums: dict[int, str], serve: Sequence[int]
) -> mc.ModelConfig:
    config = mc.ModelConfig(
        name=name,
        platform=PLATFORM,
        backend="onnxruntime",
        max_batch_size=spec.max_batch_size,
        input=[
            mc.ModelInput(name=t.name, data_type=_config_type(t.datatype), dims=list(t.dims))
            for t in spec.inputs
        ],
        output=[
            mc.ModelOutput(name=t.name, data_type=_config_type(t.datatype), dims=list(t.dims))
            for t in spec.outputs
        ],
        instance_group=[
            mc.ModelInstanceGroup(count=spec.instance_count, kind=mc.ModelInstanceGroup.KIND_CPU)
        ],
        version_policy=mc.ModelVersionPolicy(
            specific=mc.ModelVersionPolicy.Specific(versions=sorted(serve))
        ),
    )
    if spec.max_queue_delay_microseconds >= 0 and spec.max_batch_size > 0:
        config.dynamic_batching.SetInParent()  # present even with a zero delay
        config.dynamic_batching.max_queue_delay_microseconds = spec.max_queue_delay_microseconds
    for version, digest in sorted(checksums.items()):
        config.parameters[f"{SHA256_PREFIX}{version}"].string_value = digest
    if spec.signature_json:
        config.parameters[TRITON_CONFIG_PARAMETER].string_value = spec.signature_json
    return config


def parse_config(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


class ModelRepository:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def models(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG).is_file())

    def versions(self, name: str) -> list[int]:
        folder = self.root / name
        return sorted(
            int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MODEL_FILE).exists()
        )

    def config(self, name: str) -> mc.ModelConfig:
        path = self.root / name / CONFIG
        if not path.is_file():
            raise NotFound(f"model {name!r} is not in the repository {self.root}")
        try:
            return parse_config(path.read_text())
        except text_format.ParseError as error:
            raise FailedPrecondition(f"{path} is not a valid ModelConfig: {error}") from None

    def verified_model_file(self, name: str, version: int, config: mc.ModelConfig) -> Path:
        """The version's model file, after checking its bytes against the config."""
        path = self.root / name / str(version) / MODEL_FILE
        if not path.is_file():
            raise NotFound(f"model {name!r} has no version {version} in {self.root}")
        expected = config.parameters.get(f"{SHA256_PREFIX}{version}")
        if expected is None or not expected.string_value:
            raise FailedPrecondition(
                f"model {name!r} version {version}: config.pbtxt records no sha256 for it"
            )
        actual = sha256_file(path)
        if actual != expected.string_value:
            raise FailedPrecondition(
                f"model {name!r} version {version}: model.onnx sha256 {actual} does not match"
                f" {expected.string_value} recorded at publish time; refusing to load it"
            )
        return path

    def publish(
        self,
        name: str,
        version: int,
        model_file: Path,
        spec: PublishSpec,
        keep_serving: bool = False,
    ) -> str:
        """Adds `version` of `name` (replacing a version folder of the same number) and
        serves it: alone, or beside the versions serving now when `keep_serving`."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=folder))
        shutil.copyfile(model_file, staging / MODEL_FILE)
        digest = sha256_file(staging / MODEL_FILE)
        target = folder / str(version)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        checksums, serve = {}, {version}
        if (folder / CONFIG).is_file():
            old = self.config(name)
            checksums = {
                int(k.removeprefix(SHA256_PREFIX)): v.string_value
                for k, v in old.parameters.items()
                if k.startswith(SHA256_PREFIX) and (folder / k.removeprefix(SHA256_PREFIX)).exists()
            }
            if keep_serving:
                serve.update(served_versions(old, [v for v in checksums if v != version]))
        checksums[version] = digest
        text = text_format.MessageToString(build_config(name, spec, checksums, sorted(serve)))
        tmp = folder / f".{CONFIG}.tmp"
        tmp.write_text(text)
        os.replace(tmp, folder / CONFIG)
        return digest
