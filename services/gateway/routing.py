"""Which version answers each row: champion, canary (a sticky share of entities), or the
version a request pins; and whether the challenger also scores in the shadow.

The routing policy starts from settings and changes through the admin RPC; every change
and every automatic canary rollback is an audit-log entry, and the router replays the
log at start, so a restart keeps both the operator's choices and the rollbacks.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from gateway.aliases import AliasSource
from gateway.slo import Slo, SloWindow, WindowStats
from wavepod.runtime.audit import AuditLog

log = logging.getLogger(__name__)

SET_ROUTING = "routing.set"
CANARY_ROLLBACK = "canary.rollback"
SLO_ACTOR = "gateway/slo-monitor"


class Route(str, Enum):
    CHAMPION = "champion"
    CANARY = "canary"
    PINNED = "pinned"  # the request named a version
    SHADOW = "shadow"  # scored and logged, never returned
    FALLBACK = "champion-after-canary-failed"


@dataclass(frozen=True)
class RoutingPolicy:
    canary_share: float = 0.0  # of entities (sticky), 0..1
    shadow: bool = False  # the challenger also scores what the champion answers


@dataclass(frozen=True)
class Group:
    route: Route
    version: str
    rows: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    groups: tuple[Group, ...]
    shadow_version: str = ""  # "": no shadow scoring
    champion: str = ""  # where a failed canary call falls back to


@dataclass(frozen=True)
class RoutingState:
    model: str
    champion: str
    challenger: str
    policy: RoutingPolicy
    rolled_back: tuple[str, ...]
    canary: WindowStats


def canary_bucket(model: str, key: str) -> float:
    """A stable point in [0, 1) per model and entity: the same entity always lands on
    the same side of the share, and models split independently."""
    digest = hashlib.sha256(f"{model}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class _ModelRouting:
    policy: RoutingPolicy
    rolled_back: set[str] = field(default_factory=set)
    windows: dict[str, SloWindow] = field(default_factory=dict)


class Router:
    def __init__(
        self, aliases: AliasSource, defaults: RoutingPolicy, slo: Slo, audit: AuditLog
    ) -> None:
        self._aliases = aliases
        self._defaults = defaults
        self._slo = slo
        self._audit = audit
        self._models: dict[str, _ModelRouting] = {}
        for entry in audit.entries():
            model, _, version = entry.target.partition(":")
            if entry.action == SET_ROUTING:
                state = self._model(model)
                state.policy = replace(
                    state.policy,
                    **{k: v for k, v in entry.detail.items() if k in ("canary_share", "shadow")},
                )
                for resumed in entry.detail.get("resume", ()):
                    state.rolled_back.discard(str(resumed))
            elif entry.action == CANARY_ROLLBACK:
                self._model(model).rolled_back.add(version)

    def _model(self, model: str) -> _ModelRouting:
        return self._models.setdefault(model, _ModelRouting(self._defaults))

    async def plan(self, model: str, pinned: str, keys: Sequence[str]) -> Plan:
        everyone = tuple(range(len(keys)))
        if pinned:
            return Plan((Group(Route.PINNED, pinned, everyone),))
        aliases = await self._aliases.aliases(model)
        state = self._model(model)
        challenger = aliases.challenger
        if not challenger or challenger == aliases.champion or challenger in state.rolled_back:
            return Plan((Group(Route.CHAMPION, aliases.champion, everyone),))
        share = state.policy.canary_share
        in_canary = [canary_bucket(model, k) < share for k in keys]
        canary = tuple(i for i in everyone if in_canary[i])
        rest = tuple(i for i in everyone if not in_canary[i])
        groups = tuple(
            g
            for g in (
                Group(Route.CHAMPION, aliases.champion, rest),
                Group(Route.CANARY, challenger, canary),
            )
            if g.rows
        )
        return Plan(groups, challenger if state.policy.shadow else "", aliases.champion)

    def record_canary(self, model: str, version: str, ok: bool, latency_ms: float) -> None:
        """One canary call's outcome; rolls the canary back when the window breaks the SLO."""
        state = self._model(model)
        window = state.windows.setdefault(version, SloWindow(self._slo))
        window.record(ok, latency_ms)
        if version in state.rolled_back or not window.due():
            return
        reason = window.breach()
        if reason:
            state.rolled_back.add(version)
            stats = window.stats()
            self._audit.append(
                SLO_ACTOR,
                CANARY_ROLLBACK,
                f"{model}:{version}",
                {
                    "reason": reason,
                    "calls": stats.calls,
                    "error_rate": stats.error_rate,
                    "p95_ms": stats.p95_ms,
                },
            )
            log.warning("canary rolled back", extra={"model": model, "version": version})

    def set_policy(
        self,
        actor: str,
        model: str,
        canary_share: float | None,
        shadow: bool | None,
        resume: Sequence[str],
    ) -> None:
        state = self._model(model)
        changes: dict[str, object] = {}
        if canary_share is not None:
            changes["canary_share"] = canary_share
        if shadow is not None:
            changes["shadow"] = shadow
        # Written before it takes effect: no change without its record.
        self._audit.append(actor, SET_ROUTING, model, {**changes, "resume": list(resume)})
        state.policy = replace(state.policy, **changes)  # type: ignore[arg-type]
        for version in resume:
            state.rolled_back.discard(version)
            state.windows.pop(version, None)

    async def state(self, model: str) -> RoutingState:
        aliases = await self._aliases.aliases(model)
        routing = self._model(model)
        window = routing.windows.get(aliases.challenger)
        return RoutingState(
            model,
            aliases.champion,
            aliases.challenger,
            routing.policy,
            tuple(sorted(routing.rolled_back)),
            window.stats() if window else WindowStats(0, 0.0, 0.0),
        )
