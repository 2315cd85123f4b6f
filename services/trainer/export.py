"""ONNX export of the trained model, and the parity check that gates registration."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
import onnxruntime as ort
from onnxmltools.convert.common.data_types import FloatTensorType

from wavepod.runtime.status import FailedPrecondition

# Opset 15 is the newest onnxmltools' LightGBM converter is verified with, and what
# Triton's onnxruntime backend loads everywhere.
TARGET_OPSET = 15


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    rows: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def float32_thresholds(model: lgb.LGBMRegressor) -> lgb.Booster:
    """The same trees with every split threshold lowered to the largest float32 not
    above it.

    LightGBM compares a float32 input (widened to double) with a double threshold; ONNX
    Runtime compares float32 with the threshold rounded to the nearest float32, which may
    round up onto an input value and send it the other way (seen: 0.26 days on a
    retrain's holdout). For a float32 x, x <= t exactly when x <= floor32(t), so these
    trees answer every float32 input as the original does, in both runtimes.
    """
    lines = []
    for line in model.booster_.model_to_string().splitlines():
        if line.startswith("threshold="):
            exact = np.array(line.removeprefix("threshold=").split(), dtype=np.float64)
            rounded = exact.astype(np.float32)
            lowered = np.where(
                rounded.astype(np.float64) > exact,
                np.nextafter(rounded, np.float32(-np.inf)),
                rounded,
            )
            line = "threshold=" + " ".join(repr(float(v)) for v in lowered)
        elif line.startswith("tree_sizes="):
            continue  # byte offsets of the old text; LightGBM parses without them
        lines.append(line)
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def to_onnx(
    model: lgb.LGBMRegressor, n_features: int, input_name: str, output_name: str
) -> onnx.ModelProto:
    proto = onnxmltools.convert_lightgbm(
        float32_thresholds(model),
        initial_types=[(input_name, FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
    )
    # Name the output after the signature ("prediction"), not the converter's "variable".
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [output_name if o == old else o for o in node.output]
    proto.graph.output[0].name = output_name
    onnx.checker.check_model(proto)
    return proto


def check_parity(
    proto: onnx.ModelProto, model: lgb.LGBMRegressor, x: np.ndarray, tolerance: float
) -> Parity:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    exported = session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1)
    native = model.predict(x)
    parity = Parity(float(np.max(np.abs(exported - native))), x.shape[0], tolerance)
    if not parity.ok:
        raise FailedPrecondition(
            f"ONNX parity failed on the holdout: max |onnx - native| = {parity.max_abs_diff:.3g}"
            f" over {parity.rows} rows exceeds {tolerance:g}; nothing was registered"
        )
    return parity
