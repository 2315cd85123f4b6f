"""Bearer-token authentication mapped to roles: the hook services switch on.

Tokens are never stored: the tokens file holds `sha256(token)`, a principal name and
its roles, one per line (`<hex> <name> role1,role2`), so several tokens per client can
be active at once for rotation. The file is read again when it changes, so adding a
token or removing one (revoking it) takes effect within a second, without a restart.
Health checks and reflection stay open.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from wavepod.runtime.handlers import HandlerInterceptor, aborting_handler, wrap_handler

log = logging.getLogger(__name__)

PUBLIC_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]


current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "current_principal", default=None
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read_tokens(path: Path) -> dict[str, Principal]:
    entries: dict[str, Principal] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or len(parts[0]) != 64:
            raise ValueError(
                f"{path}:{lineno}: expected '<sha256-hex> <name> <role,role>'"
                f" ({len(parts)} fields found)"
            )
        digest, name, roles = parts
        entries[digest.lower()] = Principal(name, frozenset(roles.split(",")))
    return entries


class TokenStore:
    """The principals of a tokens file, kept current: the file is checked for a change
    (inode, size, mtime: a rewrite, or a Kubernetes secret's symlink swap) at most every
    `check_seconds`. A file that no longer parses is logged as an error and the last good
    one stays in force: a typo must not lock every caller out."""

    def __init__(self, path: Path, check_seconds: float = 1.0) -> None:
        self._path = path
        self._check_seconds = check_seconds
        self._stamp = self._stat()
        self._by_hash = _read_tokens(path)  # a broken file stops the start
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            found = os.stat(self._path)
        except OSError:
            return None
        return (found.st_ino, found.st_size, found.st_mtime_ns)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._check_seconds:
            return
        self._checked = now
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._by_hash = _read_tokens(self._path)
        except (OSError, ValueError) as error:
            log.error("tokens file not reloaded; the last good one stays: %s", error)
            return
        log.info("tokens file reloaded", extra={"principals": len(self._by_hash)})

    def lookup(self, token: str) -> Principal | None:
        self._refresh()
        return self._by_hash.get(hash_token(token))

    def caller(self, metadata: Any) -> Principal | None:
        """The principal whose bearer token the call's metadata carries, if known."""
        token = bearer_token(metadata)
        return self.lookup(token) if token else None


def method_roles(
    service: ServiceDescriptor, roles: Mapping[str, Iterable[str]]
) -> dict[str, frozenset[str]]:
    """A service's `method_roles` (full method name -> roles), from roles per RPC name.

    Every RPC of the contract must be named (least privilege by default: an RPC added to
    the contract gets no caller until someone decides who may call it).
    """
    if missing := sorted(set(service.methods_by_name) - set(roles)):
        raise ValueError(f"{service.full_name}: no roles for {missing}")
    paths = rpc_paths(service, roles)
    return {path: frozenset(roles[path.rsplit("/", 1)[1]]) for path in paths}


def rpc_paths(service: ServiceDescriptor, names: Iterable[str]) -> frozenset[str]:
    """Full method names (`/pkg.Service/Method`) of RPCs of `service`, checked to exist."""
    names = set(names)
    if unknown := sorted(names - set(service.methods_by_name)):
        raise ValueError(f"{service.full_name} has no RPCs {unknown}")
    return frozenset(f"/{service.full_name}/{name}" for name in names)


def bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    return None


class AuthInterceptor(HandlerInterceptor):
    """UNAUTHENTICATED without a known token; PERMISSION_DENIED without a required role.

    `method_roles` maps a full method name (`/pkg.Service/Method`) to the roles any of
    which grants access; a method not listed needs an authenticated caller only.
    """

    per_call = True  # reads each call's bearer token

    def __init__(
        self, tokens: TokenStore, method_roles: Mapping[str, frozenset[str]] | None = None
    ) -> None:
        super().__init__()
        self._tokens = tokens
        self._method_roles = dict(method_roles or {})

    def handle(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        method = details.method
        if method.startswith(PUBLIC_METHOD_PREFIXES):
            return handler
        principal = self._tokens.caller(details.invocation_metadata)
        if principal is None:
            return aborting_handler(
                handler, grpc.StatusCode.UNAUTHENTICATED, "missing or unknown bearer token"
            )
        needed = self._method_roles.get(method)
        if needed and not (needed & principal.roles):
            return aborting_handler(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} needs one of the roles {sorted(needed)}",
            )

        @asynccontextmanager
        async def around(_context: grpc.aio.ServicerContext, _request: Any) -> AsyncIterator[None]:
            reset = current_principal.set(principal)
            try:
                yield
            finally:
                current_principal.reset(reset)

        return wrap_handler(handler, around)
