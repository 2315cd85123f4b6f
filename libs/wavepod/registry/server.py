"""MLflow's tracking server as wavepod runs it: the entry point of the wavepod/mlflow image.

`mlflow server` itself, always with its basic-auth app (users and roles: access.py), its
stores named by environment and every secret read from a file, so none is on a command
line, in a compose file or in the server's log:

    WAVEPOD_MLFLOW_BACKEND_STORE_URI      runs and models, e.g.
                                          postgresql+psycopg://mlflow@postgres:5432/mlflow
    WAVEPOD_MLFLOW_AUTH_DATABASE_URI      users and permissions (same forms)
    WAVEPOD_MLFLOW_DATABASE_PASSWORD_FILE the PostgreSQL password of both (given to libpq
                                          as PGPASSWORD); unset: none
    WAVEPOD_MLFLOW_ARTIFACTS_DESTINATION  e.g. s3://mlflow (MLFLOW_S3_ENDPOINT_URL, AWS_*)
    WAVEPOD_MLFLOW_ADMIN_PASSWORD_FILE    the admin's password, set when the user database
                                          is first made (required)
    WAVEPOD_MLFLOW_SECRET_KEY_FILE        Flask's key for the auth app's forms (required)
    WAVEPOD_MLFLOW_ALLOWED_HOSTS          Host headers accepted (MLflow's DNS-rebinding
                                          guard), e.g. mlflow:5000; unset: MLflow's
                                          default (loopback and private addresses)

    python -m wavepod.registry.server             # serve (the image's default)
    python -m wavepod.registry.server provision --tracking-uri ... (see access.py)

The image carries the PostgreSQL driver, boto3 and Flask-WTF, which MLflow's own image
lacks, so nothing is installed when a container starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from wavepod.registry import access
from wavepod.runtime.secrets import write_private


class MlflowServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAVEPOD_MLFLOW_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface to bind; 0.0.0.0 in containers.")
    port: int = Field(default=5000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, description="Server worker processes.")
    backend_store_uri: str = Field(default="sqlite:///mlflow.db", description="Runs and models.")
    auth_database_uri: str = Field(default="sqlite:///mlflow-auth.db", description="Users, roles.")
    database_password_file: Path | None = Field(
        default=None, description="PostgreSQL password of both stores; unset: none."
    )
    artifacts_destination: str = Field(
        default="mlartifacts", description="Where artifacts are kept."
    )
    admin_password_file: Path = Field(description="The admin user's password.")
    secret_key_file: Path = Field(description="Flask's secret key (the auth app's forms).")
    allowed_hosts: str = Field(
        default="", description="Accepted Host headers; '': MLflow's default."
    )


def import_path() -> str:
    """This process's import path as PYTHONPATH: MLflow starts its workers as
    `python -m uvicorn ...`, and they must import what this process does (a PEX's paths)."""
    return os.pathsep.join(p for p in sys.path if p)


def server_command(
    settings: MlflowServerSettings, config_dir: Path
) -> tuple[list[str], dict[str, str]]:
    """The `mlflow server` command line and environment for `settings`; writes the auth
    app's configuration (it names the user database) into `config_dir`."""
    config = config_dir / "basic_auth.ini"
    write_private(config, access.auth_config(settings.auth_database_uri))
    env = {
        "MLFLOW_DISABLE_TELEMETRY": "true",  # no usage reports leave a wavepod deployment
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": access.read_secret_file(settings.admin_password_file),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": access.read_secret_file(settings.secret_key_file),
        # Read by `mlflow server` from its environment, so the store's URI (and with it
        # any password a deployer put there) stays off the process list.
        "MLFLOW_BACKEND_STORE_URI": settings.backend_store_uri,
        "MLFLOW_ARTIFACTS_DESTINATION": settings.artifacts_destination,
        "PYTHONPATH": import_path(),
    }
    if settings.database_password_file is not None:
        env["PGPASSWORD"] = access.read_secret_file(settings.database_password_file)
    if settings.allowed_hosts:
        env["MLFLOW_SERVER_ALLOWED_HOSTS"] = settings.allowed_hosts
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
    ]
    return command, env


def serve(settings: MlflowServerSettings) -> None:
    """Replaces this process with MLflow's server (so it gets the container's signals)."""
    command, env = server_command(settings, Path(tempfile.mkdtemp(prefix="wavepod-mlflow-")))
    os.execve(command[0], command, env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="wavepod-mlflow",
        description="MLflow's tracking server with wavepod's users (settings: WAVEPOD_MLFLOW_*).",
    )
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "provision"))
    # Everything after the command is the command's own (`provision --help` included).
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command == "provision":
        access.main(["provision", *args.arguments])
    elif args.arguments:
        parser.error(
            f"serve takes no arguments (settings come from WAVEPOD_MLFLOW_*): {args.arguments}"
        )
    else:
        serve(MlflowServerSettings())  # type: ignore[call-arg]  # required fields: env


if __name__ == "__main__":
    main()
