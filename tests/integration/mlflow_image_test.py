"""The wavepod/mlflow image serves MLflow on PostgreSQL with wavepod's users, as Compose
runs it: secrets from mounted files, the stores named by WAVEPOD_MLFLOW_*, the users made
by the same image's `provision` command. Both run as deploy/k8s runs them too: a
read-only root filesystem with a scratch /tmp, no capabilities, no privilege escalation,
and the server answers the manifest's health probe (its Host header included).

Needs a Docker daemon (DOCKER_HOST) and PostgreSQL's binaries; .ci/run provides both.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from integration.containers import docker, git_sha_tag

from wavepod.runtime.testing.process import free_port
from wavepod.testing.postgres import postgres_server

IMAGE_INFO = Path("deploy.mlflow/image.docker-info.json")
DATABASE_PASSWORD = "pg-secret-4d1f"
SECRETS = {
    "postgres_password": DATABASE_PASSWORD,
    "mlflow_admin_password": "admin-secret-8e2a",
    "mlflow_secret_key": "flask-key-51c9",
    "operator_mlflow_password": "operator-secret-a71b",
}
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
# How deploy/k8s/wavepod.yaml's security contexts run the image.
LOCKED_DOWN = (
    "--read-only",
    "--tmpfs=/tmp:exec,uid=65532,gid=65532",  # an emptyDir: the PEX unpacks there
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
)


def _status(url: str, user: str = "", password: str = "", host: str = "") -> int:
    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:  # not listening (yet)
        return 0


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    directory.chmod(0o755)
    for name, value in SECRETS.items():
        (directory / name).write_text(value + "\n")
        (directory / name).chmod(0o444)  # the image's user, 65532, reads them
    return directory


@pytest.fixture
def database() -> Iterator[str]:
    """PostgreSQL with password authentication and the two databases MLflow uses; yields
    the server's URL, `postgresql://postgres@127.0.0.1:PORT`."""
    with postgres_server("mlflow", password=DATABASE_PASSWORD) as url:
        with psycopg.connect(url, password=DATABASE_PASSWORD, autocommit=True) as connection:
            connection.execute("CREATE DATABASE mlflow_auth")
        yield url.rsplit("/", 1)[0]


def test_the_mlflow_image_serves_wavepods_users_on_postgresql(secrets: Path, database: str) -> None:
    tag = git_sha_tag(IMAGE_INFO)
    assert docker("inspect", "--format", "{{.Config.User}}", tag) == "65532:65532"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = database.replace("postgresql://", "postgresql+psycopg://")  # SQLAlchemy's name
    container = docker(
        "run",
        "-d",
        "--network=host",
        *LOCKED_DOWN,
        "-v",
        f"{secrets}:/run/secrets:ro",
        "-e",
        f"WAVEPOD_MLFLOW_PORT={port}",
        "-e",
        f"WAVEPOD_MLFLOW_BACKEND_STORE_URI={store}/mlflow",
        "-e",
        f"WAVEPOD_MLFLOW_AUTH_DATABASE_URI={store}/mlflow_auth",
        "-e",
        "WAVEPOD_MLFLOW_DATABASE_PASSWORD_FILE=/run/secrets/postgres_password",
        "-e",
        "WAVEPOD_MLFLOW_ARTIFACTS_DESTINATION=/tmp/artifacts",
        "-e",
        "WAVEPOD_MLFLOW_ADMIN_PASSWORD_FILE=/run/secrets/mlflow_admin_password",
        "-e",
        "WAVEPOD_MLFLOW_SECRET_KEY_FILE=/run/secrets/mlflow_secret_key",
        "-e",
        f"WAVEPOD_MLFLOW_ALLOWED_HOSTS=mlflow:{port},localhost:*,127.0.0.1:*",
        tag,
    )
    try:
        deadline = time.monotonic() + 180  # the first start unpacks MLflow from the PEX
        while _status(f"{url}/health") != 200:
            running = docker("inspect", "--format", "{{.State.Running}}", container)
            assert running == "true" and time.monotonic() < deadline, docker("logs", container)
            time.sleep(1)
        # The Kubernetes probe's request: it names localhost, as the manifest says.
        assert _status(f"{url}/health", host=f"localhost:{port}") == 200

        # Nobody gets in unsigned; the users come from the image's `provision` command.
        assert _status(url + SEARCH) == 401
        operator = ("operator", SECRETS["operator_mlflow_password"])
        assert _status(url + SEARCH, *operator) == 401
        provisioned = docker(
            "run",
            "--rm",
            "--network=host",
            *LOCKED_DOWN,
            "-v",
            f"{secrets}:/run/secrets:ro",
            tag,
            "provision",
            f"--tracking-uri={url}",
            "--admin-password-file=/run/secrets/mlflow_admin_password",
            "--user=operator=/run/secrets/operator_mlflow_password",
        )
        assert "provisioned: operator" in provisioned
        assert _status(url + SEARCH, *operator) == 200
        # Compose's clients call it by service name; other Host headers are refused.
        assert _status(url + SEARCH, *operator, host=f"mlflow:{port}") == 200
        assert _status(url + SEARCH, *operator, host="attacker.example") == 403

        # Both stores are the PostgreSQL databases, reached with the password from its file,
        # which no process inside shows on its command line.
        with psycopg.connect(f"{database}/mlflow_auth", password=DATABASE_PASSWORD) as connection:
            users = {row[0] for row in connection.execute("SELECT username FROM users")}
        assert {"admin", "operator"} <= users
        with psycopg.connect(f"{database}/mlflow", password=DATABASE_PASSWORD) as connection:
            assert connection.execute("SELECT count(*) FROM experiments").fetchone() == (1,)
        processes = docker("top", container, "-eo", "pid,args")
        assert "mlflow" in processes
        for value in SECRETS.values():
            assert value not in processes
            assert value not in docker("logs", container)

        docker("stop", "--time", "20", container)
        assert docker("inspect", "--format", "{{.State.Running}}", container) == "false"
    finally:
        docker("rm", "-f", container, check=False)
