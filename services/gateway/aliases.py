"""Which model version is champion and which is challenger: MLflow registry aliases.

Read over MLflow's REST API (no MLflow client in the gateway's PEX) and cached: once a
model's aliases are known, requests never wait for MLflow; an expired entry is answered
from the cache while one background lookup refreshes it. When MLflow cannot be reached
the last known aliases stay in force: the registry being down must not take predictions
down. Without a registry the newest
version the inference service serves answers (version "").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Aliases:
    champion: str = ""  # a version number; "": the newest version serving
    challenger: str = ""  # "": none


class AliasSource(Protocol):
    async def aliases(self, model: str) -> Aliases: ...


class NoRegistry:
    async def aliases(self, model: str) -> Aliases:
        return Aliases()


class MlflowAliases:
    def __init__(
        self,
        tracking_uri: str,
        authorization: str | None,  # the Authorization header's value, if MLflow needs one
        refresh_seconds: float,
        champion: str = "champion",
        challenger: str = "challenger",
        timeout: float = 2.0,
    ) -> None:
        self._uri = tracking_uri.rstrip("/")
        self._headers = {"Authorization": authorization} if authorization else {}
        self._refresh = refresh_seconds
        self._names = (champion, challenger)
        self._timeout = timeout
        self._cache: dict[str, tuple[float, Aliases]] = {}
        self._lookups: dict[str, asyncio.Task[Aliases]] = {}  # one in flight per model

    async def aliases(self, model: str) -> Aliases:
        cached = self._cache.get(model)
        if cached is not None and time.monotonic() - cached[0] < self._refresh:
            return cached[1]
        lookup = self._lookups.get(model)
        if lookup is None:
            lookup = asyncio.create_task(self._lookup(model))
            self._lookups[model] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(model, None))
        if cached is not None:
            return cached[1]  # stale for one lookup's time, never a wait on MLflow
        return await asyncio.shield(lookup)

    async def _lookup(self, model: str) -> Aliases:
        cached = self._cache.get(model)
        try:
            champion, challenger = await asyncio.gather(
                *(asyncio.to_thread(self._version, model, alias) for alias in self._names)
            )
            found = Aliases(champion, challenger)
        except (OSError, ValueError) as error:
            log.warning("MLflow aliases unreadable", extra={"model": model, "error": str(error)})
            found = cached[1] if cached is not None else Aliases()
        self._cache[model] = (time.monotonic(), found)
        return found

    def _version(self, model: str, alias: str) -> str:
        query = urllib.parse.urlencode({"name": model, "alias": alias})
        request = urllib.request.Request(
            f"{self._uri}/api/2.0/mlflow/registered-models/alias?{query}", headers=self._headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return str(json.load(response)["model_version"]["version"])
        except urllib.error.HTTPError as error:
            if error.code == 404:  # no such alias (or model): not an outage
                return ""
            raise
