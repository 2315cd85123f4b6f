"""Where the CLI finds the services, and what it presents to them.

Addresses come from `WAVEPOD_<SERVICE>_ADDRESS`, else from the local stack's
`<state>/endpoints.json` (written by `deploy/local:up`; `--state` or WAVEPOD_STATE,
default .wavepod/stack), else the conventional ports. Bearer tokens come from
`WAVEPOD_<SERVICE>_TOKEN`, else WAVEPOD_TOKEN, else the local stack's operator token
(`<state>/operator.token`, mode 600); never from the command line. With
WAVEPOD_TLS_CA_FILE set, calls use TLS (and, with WAVEPOD_TLS_CERT_FILE and
WAVEPOD_TLS_KEY_FILE, present a client certificate for mutual TLS). MLflow: its own
MLFLOW_TRACKING_URI and MLFLOW_TRACKING_USERNAME/PASSWORD, else the local stack's MLflow
and its read-only operator user (`<state>/mlflow/operator.password`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from wavepod.runtime.secrets import write_private

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
OPERATOR_TOKEN_FILE = "operator.token"  # the stack's token for a person: every role
MLFLOW_USERS_DIR = "mlflow"  # the stack's MLflow users' passwords: <user>.password, mode 600

Metadata = tuple[tuple[str, str], ...]


def _credentials() -> grpc.ChannelCredentials | None:
    ca = os.environ.get("WAVEPOD_TLS_CA_FILE")
    if not ca:
        return None
    cert, key = os.environ.get("WAVEPOD_TLS_CERT_FILE"), os.environ.get("WAVEPOD_TLS_KEY_FILE")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )


@dataclass(frozen=True)
class Endpoints:
    addresses: dict[str, str]
    mlflow: str | None  # MLflow tracking URI, for models and aliases
    credentials: grpc.ChannelCredentials | None = None  # TLS; None: plaintext
    stack_token: str | None = None  # the stack's operator token, when there is one
    state: Path = DEFAULT_STATE  # the local stack's state directory

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
        token_file = state / OPERATOR_TOKEN_FILE
        stack_token = token_file.read_text().strip() if token_file.is_file() else None
        return cls(addresses, mlflow, _credentials(), stack_token, state)

    def channel(self, service: str) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(self.addresses[service])
        return grpc.secure_channel(self.addresses[service], self.credentials)

    def metadata(self, service: str) -> Metadata:
        """The bearer token to present to `service`, if any."""
        token = (
            os.environ.get(f"WAVEPOD_{service.upper()}_TOKEN")
            or os.environ.get("WAVEPOD_TOKEN")
            or self.stack_token
        )
        return bearer(token) if token else ()

    def sign_in_to_mlflow(self) -> None:
        """MLflow takes MLFLOW_TRACKING_USERNAME/PASSWORD when set; else the local
        stack's operator user (read-only), when this state has one."""
        password = mlflow_password_file(self.state, "operator")
        if "MLFLOW_TRACKING_USERNAME" not in os.environ and password.is_file():
            os.environ["MLFLOW_TRACKING_USERNAME"] = "operator"
            os.environ["MLFLOW_TRACKING_PASSWORD"] = password.read_text().strip()


def mlflow_password_file(state: Path, user: str) -> Path:
    """Where the local stack keeps MLflow `user`'s password."""
    return state / MLFLOW_USERS_DIR / f"{user}.password"


def audit_log(state: Path, service: str) -> Path:
    """Where the local stack keeps `service`'s audit log."""
    return state / f"{service}-audit.jsonl"


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def write_endpoints(
    state: Path, addresses: dict[str, str], mlflow: str, operator_token: str
) -> None:
    """What `load` reads: the stack's services, as it started them, and the token a
    person on this machine uses with them (readable by its owner only)."""
    (state / ENDPOINTS_FILE).write_text(json.dumps({**addresses, "mlflow": mlflow}, indent=2))
    write_private(state / OPERATOR_TOKEN_FILE, operator_token)


_current: Endpoints | None = None


def use(state: Path) -> None:
    """Set by the CLI's `--state` before a command runs."""
    global _current
    _current = Endpoints.load(state)


def current() -> Endpoints:
    return _current or Endpoints.load()
