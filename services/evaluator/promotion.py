"""Promote and Rollback: the champion alias moves only to a version whose latest
evaluation passed, and the inference service serves it before the alias says so.

Order matters for what a crash leaves behind: publish first (the inference service then
serves the new version; the gateway falls back to the newest serving version while the
alias still names the old one), then move `previous` and `champion`, then the audit
entry. Re-running a promotion that stopped half-way finishes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from evaluator.evaluation import (
    EVALUATION_FAILED_TAG,
    EVALUATION_ID_TAG,
    EVALUATION_PASSED_TAG,
)
from wavepod.registry import CHAMPION, PREVIOUS, alias_version, client, registry_error
from wavepod.runtime.audit import AuditLog
from wavepod.runtime.status import FailedPrecondition, FieldViolation, InvalidArgument

# Makes the inference service serve (name, version) alone.
Publish = Callable[[str, str], Awaitable[None]]

PROMOTE, ROLLBACK = "model.promote", "model.rollback"


@dataclass(frozen=True)
class ChampionChange:
    model: str
    champion: str
    previous: str


class Promoter:
    def __init__(self, tracking_uri: str, publish: Publish, audit: AuditLog) -> None:
        self._uri = tracking_uri
        self._publish = publish
        self._audit = audit

    def _check_passed(self, name: str, version: str, evaluation_id: str) -> None:
        try:
            tags = client(self._uri).get_model_version(name, version).tags or {}
        except MlflowException as error:
            raise registry_error(error, f"model {name} version {version}", self._uri) from None
        latest = tags.get(EVALUATION_ID_TAG, "")
        if not latest:
            raise FailedPrecondition(f"{name} version {version} has not been evaluated")
        if evaluation_id and evaluation_id != latest:
            raise FailedPrecondition(
                f"evaluation {evaluation_id} is not {name} version {version}'s latest"
                f" ({latest}); promote on the latest evaluation"
            )
        if tags.get(EVALUATION_PASSED_TAG) != "true":
            raise FailedPrecondition(
                f"{name} version {version} failed evaluation {latest}: gates"
                f" {tags.get(EVALUATION_FAILED_TAG, '?')} (see the evaluation report)"
            )

    def _move(self, name: str, champion: str, previous: str) -> None:
        registry = client(self._uri)
        try:
            if previous:
                registry.set_registered_model_alias(name, PREVIOUS, previous)
            registry.set_registered_model_alias(name, CHAMPION, champion)
        except MlflowException as error:
            raise registry_error(error, f"aliases of {name}", self._uri) from None

    async def promote(
        self, actor: str, name: str, version: str, evaluation_id: str, reason: str
    ) -> ChampionChange:
        if not reason:
            raise InvalidArgument(FieldViolation("reason", "say why (it goes in the audit log)"))
        self._check_passed(name, version, evaluation_id)
        current = alias_version(self._uri, name, CHAMPION)
        await self._publish(name, version)
        previous = current if current != version else alias_version(self._uri, name, PREVIOUS)
        self._move(name, version, previous)
        self._audit.append(
            actor,
            PROMOTE,
            f"{name}:{version}",
            {"evaluation_id": evaluation_id, "reason": reason, "previous": previous},
        )
        return ChampionChange(name, version, previous)

    async def rollback(self, actor: str, name: str, reason: str) -> ChampionChange:
        if not reason:
            raise InvalidArgument(FieldViolation("reason", "say why (it goes in the audit log)"))
        previous = alias_version(self._uri, name, PREVIOUS)
        if not previous:
            raise FailedPrecondition(f"{name} has no previous champion to roll back to")
        current = alias_version(self._uri, name, CHAMPION)
        await self._publish(name, previous)
        # The version rolled back from becomes `previous`: a rollback can itself be undone.
        self._move(name, previous, current)
        self._audit.append(
            actor, ROLLBACK, f"{name}:{previous}", {"reason": reason, "rolled_back": current}
        )
        return ChampionChange(name, previous, current)
