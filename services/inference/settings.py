"""Inference settings: WAVEPOD_INFERENCE_* (plus the common ones in wavepod.runtime.settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from wavepod.runtime import RegistryClientSettings
from wavepod.runtime.streams import DEFAULT_STREAM_WINDOW


class InferenceSettings(RegistryClientSettings):
    model_repository: str = Field(
        ".wavepod/models", description="Triton-layout repository: <model>/<version>/model.onnx."
    )
    execution_provider: Literal["auto", "cpu"] = Field(
        "auto", description="auto: CUDA when present and the model's operators allow, else CPU."
    )
    intra_op_threads: int = Field(1, ge=1, description="ONNX Runtime threads per model instance.")
    dynamic_batching: bool = Field(
        True, description="false disables dynamic batching for every model (benchmarks)."
    )
    stream_window: int = Field(
        DEFAULT_STREAM_WINDOW,
        ge=1,
        description="Requests of one ModelStreamInfer computed at once, sharing dynamic"
        " batches (answers stay in order); 1: one at a time.",
    )
    inline_compute_us: int = Field(
        200,
        ge=0,
        description="A call that ONNX Runtime answers within this (judged by earlier calls of"
        " its size) runs on the event loop instead of a model thread, whose hand-off costs"
        " more; 0: always a model thread.",
    )
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000", description="Where PublishModel finds registered versions."
    )
    publish_max_batch_size: int = Field(256, ge=1, description="Default for PublishModel.")
    publish_max_queue_delay_us: int = Field(
        0, ge=0, description="Default for PublishModel (Triton's: batch what is queued)."
    )
