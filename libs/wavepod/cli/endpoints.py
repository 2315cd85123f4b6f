"""Where the CLI finds the services, and what it presents to them.

Addresses come from `WAVEPOD_<SERVICE>_ADDRESS`, else from the local stack's
`<state>/endpoints.json` (written by `deploy/local:up`; `--state` or WAVEPOD_STATE,
default .wavepod/stack), else the conventional ports. Bearer tokens come from
`WAVEPOD_<SERVICE>_TOKEN`, else WAVEPOD_TOKEN; never from the command line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

SERVICES = ("gateway", "ingest", "feature", "trainer", "evaluator", "inference")
DEFAULT_PORTS = {
    "gateway": 50050,
    "ingest": 50051,
    "feature": 50052,
    "trainer": 50053,
    "evaluator": 50054,
    "inference": 8001,
}
DEFAULT_STATE = Path(".wavepod/stack")
ENDPOINTS_FILE = "endpoints.json"

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Endpoints:
    addresses: dict[str, str]
    mlflow: str | None  # MLflow tracking URI, for models and aliases

    @classmethod
    def load(cls, state: Path = DEFAULT_STATE) -> Endpoints:
        written: dict[str, str] = {}
        if (state / ENDPOINTS_FILE).is_file():
            written = json.loads((state / ENDPOINTS_FILE).read_text())
        addresses = {
            service: os.environ.get(f"WAVEPOD_{service.upper()}_ADDRESS")
            or written.get(service)
            or f"127.0.0.1:{DEFAULT_PORTS[service]}"
            for service in SERVICES
        }
        mlflow = os.environ.get("MLFLOW_TRACKING_URI") or written.get("mlflow")
        return cls(addresses, mlflow)

    def channel(self, service: str) -> grpc.Channel:
        return grpc.insecure_channel(self.addresses[service])


def write_endpoints(state: Path, addresses: dict[str, str], mlflow: str) -> None:
    """What `load` reads: the stack's services, as it started them."""
    (state / ENDPOINTS_FILE).write_text(json.dumps({**addresses, "mlflow": mlflow}, indent=2))


def metadata(service: str) -> Metadata:
    token = os.environ.get(f"WAVEPOD_{service.upper()}_TOKEN") or os.environ.get("WAVEPOD_TOKEN")
    return (("authorization", f"Bearer {token}"),) if token else ()


_current: Endpoints | None = None


def use(state: Path) -> None:
    """Set by the CLI's `--state` before a command runs."""
    global _current
    _current = Endpoints.load(state)


def current() -> Endpoints:
    return _current or Endpoints.load()
