"""Registered models in the MLflow registry, as wavepod reads them: the ONNX file, the
trainer's signature, the version's lineage tags, and the aliases that say which version
is champion. One place that knows how a wavepod model version is laid out in MLflow."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from wavepod.runtime.status import FailedPrecondition, NotFound, Unavailable
from wavepod.signature import MLFLOW_METADATA_KEY, ModelSignature

MODEL_FILE = "model.onnx"
CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous", "challenger"
REFUSALS = ("PERMISSION_DENIED", "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: int
    onnx_file: Path  # valid inside the `fetch` context only
    signature: ModelSignature
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)


def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def refused(error: MlflowException, what: str, tracking_uri: str) -> FailedPrecondition | None:
    """MLflow refusing this service's own user (wrong password, or a permission its role
    lacks) is a deployment to fix, not an outage to retry."""
    if getattr(error, "error_code", "") not in REFUSALS:
        return None
    return FailedPrecondition(
        f"MLflow at {tracking_uri} refused {what} to this service's MLflow user"
        f" ({error.error_code}): {error.message}"
    )


def registry_error(error: MlflowException, what: str, tracking_uri: str) -> Exception:
    code = getattr(error, "error_code", "")
    refusal = refused(error, what, tracking_uri)
    if refusal is not None:
        return refusal
    if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
        return NotFound(f"{what}: {error.message}")
    return Unavailable(f"MLflow at {tracking_uri}: {error.message}")


def alias_version(tracking_uri: str, name: str, alias: str) -> str:
    """The version `alias` points at; "" when the alias (or the model) is not set."""
    try:
        return str(client(tracking_uri).get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        mapped = registry_error(error, f"{name}@{alias}", tracking_uri)
        if isinstance(mapped, NotFound):
            return ""
        raise mapped from None


@contextmanager
def fetch(tracking_uri: str, name: str, version: str, alias: str = "") -> Iterator[RegisteredModel]:
    """Downloads a version (by number, or by alias) to a temporary folder."""
    mlflow = client(tracking_uri)
    try:
        found = (
            mlflow.get_model_version(name, version)
            if version
            else mlflow.get_model_version_by_alias(name, alias)
        )
        with tempfile.TemporaryDirectory(prefix="wavepod-model-") as tmp:
            local = Path(
                download_artifacts(
                    # The version's own artifact location: a models:/ URI would be resolved
                    # against the process-wide registry URI, not this client's.
                    artifact_uri=found.source,
                    dst_path=tmp,
                    tracking_uri=tracking_uri,
                )
            )
            onnx_files = sorted(local.rglob(MODEL_FILE))
            if not onnx_files:
                raise FailedPrecondition(f"{name} version {found.version} holds no {MODEL_FILE}")
            metadata = Model.load(str(onnx_files[0].parent)).metadata or {}
            if MLFLOW_METADATA_KEY not in metadata:
                raise FailedPrecondition(
                    f"{name} version {found.version} has no {MLFLOW_METADATA_KEY} in its MLmodel"
                    " metadata: was it registered by the wavepod trainer?"
                )
            yield RegisteredModel(
                name,
                int(found.version),
                onnx_files[0],
                ModelSignature.from_json(str(metadata[MLFLOW_METADATA_KEY])),
                found.run_id or "",
                dict(found.tags or {}),
            )
    except MlflowException as error:
        raise registry_error(
            error, f"model {name} {version or '@' + alias}", tracking_uri
        ) from None
