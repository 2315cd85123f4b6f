"""Who may do what in MLflow: one MLflow user per wavepod service, each with only the
permissions its work needs, on MLflow's own basic-auth app (`mlflow server --app-name
basic-auth`, default permission NO_PERMISSIONS, so a user without a role sees nothing).

- trainer: no role. MLflow lets any signed-in user create experiments and registered
  models and makes the creator their owner (MANAGE); the trainer owns what it trains.
- evaluator: `wavepod-promoter` (EDIT on registered models and experiments): it moves the
  champion/previous aliases, tags versions with their evaluation and logs reports into
  the candidate's run.
- inference, gateway and the operator (the stack's person, the CLI): `wavepod-reader`
  (READ): models, aliases, runs and artifacts.

MLflow's own limits, kept: EDIT on a model is what both registering a version and moving
an alias need, so the trainer, owning its models, could move their aliases (wavepod's
trainer never does; promotion is the evaluator's, audited); and any signed-in user may
create new experiments and models of its own.

`provision` is idempotent (creates what is missing, sets each user's password to the
given one, so a rotated secret takes effect on the next run). The wavepod/mlflow image
(server.py) serves MLflow with `auth_config` and runs `provision` as a job (Compose):

    python -m wavepod.registry.server provision --tracking-uri http://mlflow:5000 \
        --admin-password-file /run/secrets/mlflow_admin_password \
        --user trainer=/run/secrets/trainer_mlflow_password ...
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

ADMIN = "admin"
WORKSPACE = "default"  # MLflow's single workspace when workspaces are off
PROMOTER, READER = "wavepod-promoter", "wavepod-reader"
# role -> (resource type, pattern, permission)
ROLES: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    PROMOTER: (("registered_model", "*", "EDIT"), ("experiment", "*", "EDIT")),
    READER: (("registered_model", "*", "READ"), ("experiment", "*", "READ")),
}
USER_ROLES: Mapping[str, str | None] = {
    "trainer": None,
    "evaluator": PROMOTER,
    "inference": READER,
    "gateway": READER,
    "operator": READER,
}
# The server's auth configuration: nobody reads anything without a role or ownership.
AUTH_CONFIG = """[mlflow]
default_permission = NO_PERMISSIONS
database_uri = {database_uri}
admin_username = {admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@contextmanager
def signed_in(credentials: Credentials) -> Iterator[None]:
    """MLflow's clients take basic-auth credentials from the environment only."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(zip(names, (credentials.username, credentials.password), strict=True))
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def provision(tracking_uri: str, admin: Credentials, passwords: Mapping[str, str]) -> None:
    """Makes the roles, and a user with its role for each of `passwords`' users."""
    unknown = sorted(set(passwords) - set(USER_ROLES))
    if unknown:
        raise ValueError(f"no MLflow role is defined for {unknown}; known: {sorted(USER_ROLES)}")
    with signed_in(admin):
        client = AuthServiceClient(tracking_uri)
        roles = {role.name: role for role in client.list_roles(WORKSPACE)}
        for name, grants in ROLES.items():
            if name not in roles:
                roles[name] = client.create_role(WORKSPACE, name)
            # Each grant checked, so a run cut short between role and grants is completed.
            held = {
                (p.resource_type, p.resource_pattern, p.permission)
                for p in client.list_role_permissions(roles[name].id)
            }
            for grant in grants:
                if grant not in held:
                    client.add_role_permission(roles[name].id, *grant)
        for username, password in passwords.items():
            try:
                client.create_user(username, password)
            except MlflowException as error:
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                client.update_user_password(username, password)
            role = USER_ROLES[username]
            held = {r.name for r in client.list_user_roles(username)}
            if role is not None and role not in held:
                client.assign_role(username, roles[role].id)


def auth_config(database_uri: str) -> str:
    """The server's basic_auth.ini (MLFLOW_AUTH_CONFIG_PATH): users in `database_uri`
    (a PostgreSQL password comes from libpq's PGPASSWORD, never from this file)."""
    return AUTH_CONFIG.format(database_uri=database_uri, admin=ADMIN)


def read_secret_file(path: str | Path) -> str:
    return Path(path).read_text().strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="wavepod's users on MLflow's basic-auth app.")
    commands = parser.add_subparsers(dest="command", required=True)
    users = commands.add_parser("provision", help="Create the roles and the users.")
    users.add_argument("--tracking-uri", required=True)
    users.add_argument("--admin-password-file", required=True)
    users.add_argument(
        "--user", action="append", default=[], metavar="NAME=PASSWORD_FILE", required=True
    )
    args = parser.parse_args(argv)
    named = dict(u.split("=", 1) for u in args.user)
    provision(
        args.tracking_uri,
        Credentials(ADMIN, read_secret_file(args.admin_password_file)),
        {name: read_secret_file(path) for name, path in named.items()},
    )
    print(f"MLflow users provisioned: {', '.join(sorted(named))}")


if __name__ == "__main__":
    main()
