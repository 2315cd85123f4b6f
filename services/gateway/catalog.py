"""Which models the gateway can call: signature and batch limit, from the inference
service's model config (the same call works against a real Triton), cached briefly so a
new version's signature is picked up within `model_refresh_seconds`. Which version
answered comes with each inference response."""

from __future__ import annotations

import time
from dataclasses import dataclass

import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

from wavepod.runtime.status import FailedPrecondition, NotFound, Unavailable
from wavepod.signature import TRITON_CONFIG_PARAMETER, ModelSignature


@dataclass(frozen=True)
class ServedModel:
    name: str
    signature: ModelSignature
    max_batch_size: int  # rows per inference call the model accepts


def inference_error(error: InferenceServerException, what: str) -> Exception:
    status = str(error.status() or "")
    if status.endswith(("UNAVAILABLE", "DEADLINE_EXCEEDED")) or not status:
        return Unavailable(f"inference ({what}): {error.message()}")
    if status.endswith("NOT_FOUND"):
        return NotFound(error.message() or what)
    return FailedPrecondition(f"inference ({what}) answered {status}: {error.message()}")


class ModelCatalog:
    def __init__(
        self,
        client: triton.InferenceServerClient,
        refresh_seconds: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._client = client
        self._headers = headers
        self._refresh = refresh_seconds
        self._cache: dict[str, tuple[float, ServedModel]] = {}

    async def get(self, name: str) -> ServedModel:
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < self._refresh:
            return cached[1]
        try:
            config = (
                await self._client.get_model_config(name, headers=self._headers, client_timeout=2.0)
            ).config
        except InferenceServerException as error:
            raise inference_error(error, f"model {name!r}") from None
        parameter = config.parameters.get(TRITON_CONFIG_PARAMETER)
        if parameter is None or not parameter.string_value:
            raise FailedPrecondition(
                f"model {name!r} carries no {TRITON_CONFIG_PARAMETER} in its config"
            )
        served = ServedModel(
            name,
            ModelSignature.from_json(parameter.string_value),
            config.max_batch_size or 1,
        )
        self._cache[name] = (time.monotonic(), served)
        return served
