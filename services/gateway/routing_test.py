"""Routing decisions and the canary's SLO, without processes (canary_test runs them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.aliases import Aliases
from gateway.routing import (
    CANARY_ROLLBACK,
    SET_ROUTING,
    SLO_ACTOR,
    Route,
    Router,
    RoutingPolicy,
    canary_bucket,
)
from gateway.slo import Slo, SloWindow
from wavepod.runtime.audit import AuditLog

SLO = Slo(max_error_rate=0.1, max_p95_ms=50.0, window_seconds=30.0, min_calls=10)


class FixedAliases:
    """The registry's answer, fixed (canary_test reads real MLflow aliases)."""

    def __init__(self, champion: str, challenger: str) -> None:
        self.value = Aliases(champion, challenger)

    async def aliases(self, model: str) -> Aliases:
        return self.value


def _router(tmp_path: Path, share: float = 0.2, shadow: bool = False) -> Router:
    return Router(
        FixedAliases("1", "2"), RoutingPolicy(share, shadow), SLO, AuditLog(tmp_path / "audit")
    )


def _routes(router: Router, keys: list[str], pinned: str = "") -> dict[str, tuple[Route, str]]:
    plan = asyncio.run(router.plan("refill", pinned, keys))
    return {keys[i]: (g.route, g.version) for g in plan.groups for i in g.rows}


def test_the_canary_takes_its_share_of_entities_and_each_entity_sticks(tmp_path: Path) -> None:
    router = _router(tmp_path, share=0.2)
    entities = [f"rx-{i}" for i in range(10_000)]
    routes = _routes(router, entities)
    canary = [e for e, (route, _) in routes.items() if route is Route.CANARY]
    assert 0.18 < len(canary) / len(entities) < 0.22  # binomial sd 0.4%
    assert {routes[e][1] for e in canary} == {"2"}
    assert {v for route, v in routes.values() if route is Route.CHAMPION} == {"1"}
    # Sticky: alone, in another batch, in another order: the same side.
    for entity in entities[:50]:
        assert _routes(router, [entity])[entity] == routes[entity]
    shuffled = entities[::-1][:500]
    assert all(_routes(router, shuffled)[e] == routes[e] for e in shuffled)
    # Raising the share keeps every entity already on the canary there.
    router.set_policy("alice", "refill", 0.5, None, ())
    wider = _routes(router, entities)
    assert all(wider[e][0] is Route.CANARY for e in canary)
    # Models split independently.
    assert canary_bucket("refill", "rx-1") != canary_bucket("other", "rx-1")


def test_pinned_versions_and_shadow_plans(tmp_path: Path) -> None:
    router = _router(tmp_path, share=0.0, shadow=True)
    plan = asyncio.run(router.plan("refill", "", ["a", "b"]))
    assert [(g.route, g.version, g.rows) for g in plan.groups] == [(Route.CHAMPION, "1", (0, 1))]
    assert plan.shadow_version == "2"
    pinned = asyncio.run(router.plan("refill", "7", ["a"]))
    assert [(g.route, g.version) for g in pinned.groups] == [(Route.PINNED, "7")]
    assert pinned.shadow_version == ""
    same = Router(FixedAliases("3", "3"), RoutingPolicy(0.5, True), SLO, AuditLog(tmp_path / "x"))
    plan = asyncio.run(same.plan("refill", "", ["a"]))
    assert plan.groups[0].route is Route.CHAMPION and plan.shadow_version == ""


def test_slo_window_names_the_breached_objective() -> None:
    window = SloWindow(SLO)
    for i in range(9):
        window.record(False, 1.0, now=100.0 + i)
    assert window.breach(now=109.0) == ""  # too few calls to judge
    window.record(True, 1.0, now=109.0)
    assert window.breach(now=109.0).startswith("error rate 90.0% > 10.0% over the last 30 s")
    assert window.breach(now=200.0) == ""  # the window slid past them
    slow = SloWindow(SLO)
    for i in range(20):
        slow.record(True, 80.0 if i % 2 else 10.0, now=float(i))
    assert slow.breach(now=20.0) == "p95 latency 80.0 ms > 50 ms over the last 30 s (20 calls)"


def test_a_breach_rolls_the_canary_back_with_an_audit_entry_that_survives_a_restart(
    tmp_path: Path,
) -> None:
    router = _router(tmp_path, share=1.0)
    for _ in range(9):
        router.record_canary("refill", "2", True, 5.0)
    router.record_canary("refill", "2", False, 5.0)
    router.record_canary("refill", "2", False, 5.0)
    assert {r for r, _ in _routes(router, ["a", "b"]).values()} == {Route.CHAMPION}
    entries = AuditLog(tmp_path / "audit").entries()
    assert [(e.actor, e.action, e.target) for e in entries] == [
        (SLO_ACTOR, CANARY_ROLLBACK, "refill:2")
    ]
    assert entries[0].detail["reason"].startswith("error rate 18.2% > 10.0%")

    # A restart replays the log: still rolled back, until an admin resumes it.
    restarted = _router(tmp_path, share=1.0)
    state = asyncio.run(restarted.state("refill"))
    assert state.rolled_back == ("2",) and state.challenger == "2"
    restarted.set_policy("alice", "refill", 0.3, True, ("2",))
    again = _router(tmp_path, share=1.0)
    state = asyncio.run(again.state("refill"))
    assert state.rolled_back == () and state.policy == RoutingPolicy(0.3, True)
    assert AuditLog(tmp_path / "audit").entries()[-1].action == SET_ROUTING


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_share_bounds_send_everyone_one_way(tmp_path: Path, share: float) -> None:
    routes = _routes(_router(tmp_path, share=share), [f"e{i}" for i in range(200)])
    expected = Route.CANARY if share == 1.0 else Route.CHAMPION
    assert {r for r, _ in routes.values()} == {expected}


def test_a_large_window_is_judged_every_hundredth_of_its_calls() -> None:
    window = SloWindow(SLO)
    judged = 0
    for i in range(5_000):
        window.record(True, 1.0, now=i * 0.001)
        judged += window.due()
    # Every call while under 100 calls, then every len/100 calls: far fewer than 5,000.
    assert 100 < judged < 600
