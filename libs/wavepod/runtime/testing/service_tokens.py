"""Tokens for services calling services in tests and in the local stack, with the roles
Compose gives each caller (`deploy/compose/service-roles`, the file make-secrets.sh
reads): a test that runs the services with these finds any RPC a service makes without
the role for it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from wavepod.runtime.auth import hash_token
from wavepod.runtime.secrets import write_private

# Relative to the build root (a test's working directory under Pants, and `pants run`'s);
# code that uses it depends on `deploy/compose:service_roles`.
SERVICE_ROLES = Path("deploy/compose/service-roles")


@dataclass(frozen=True)
class ServiceTokens:
    tokens_file: Path  # what the internal services check
    tokens: dict[str, str]  # each calling service's own token
    operator: str  # role admin, as make-secrets.sh makes one: what a person calls with

    @property
    def operator_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.operator}"),)

    def env(self, service: str) -> dict[str, str]:
        """`service`'s settings: check callers' tokens; present its own, if it calls."""
        prefix = f"WAVEPOD_{service.upper()}_"
        env = {f"{prefix}AUTH_TOKENS_FILE": str(self.tokens_file)}
        if service in self.tokens:
            env[f"{prefix}AUTH_TOKEN"] = self.tokens[service]
        return env

    def caller_env(self, service: str) -> dict[str, str]:
        """Only the token `service` presents (for a service that checks other tokens)."""
        return {f"WAVEPOD_{service.upper()}_AUTH_TOKEN": self.tokens[service]}


def service_tokens(
    directory: Path, roles_file: Path = SERVICE_ROLES, operator_roles: str = "admin"
) -> ServiceTokens:
    """New tokens; their hashes, principals and roles in `directory`/service_tokens."""
    tokens, lines = {}, []
    for raw in roles_file.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        caller, roles = raw.split()
        tokens[caller] = secrets.token_urlsafe(16)
        lines.append(f"{hash_token(tokens[caller])} {caller} {roles}")
    operator = secrets.token_urlsafe(16)
    lines.append(f"{hash_token(operator)} operator {operator_roles}")
    tokens_file = directory / "service_tokens"
    write_private(tokens_file, "\n".join(lines) + "\n")  # hashes, still no one else's
    return ServiceTokens(tokens_file, tokens, operator)
