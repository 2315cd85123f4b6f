"""Pages of lineage: a stream lands a batch every few seconds, so a dataset's lineage
soon outgrows one gRPC message (4 MB by default). Callers page through it with Google's
conventions (AIP-158): a page size (0 for the default, larger ones capped) and an opaque
token naming where the next page starts: after the last batch of the page before, in
(started_at, batch_id) order, so batches landing meanwhile shift no page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from wavepod.runtime.status import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000

Position = tuple[datetime, str]  # (started_at, batch_id) of the last batch seen


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument(FieldViolation("page.page_size", f"{requested} is negative"))
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode(dataset: str, after: Position) -> str:
    text = json.dumps([dataset, after[0].isoformat(), after[1]])
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode(dataset: str, token: str) -> Position | None:
    """The position a token names; None for no token (the first page)."""
    if not token:
        return None
    try:
        named, at, batch_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        position = (datetime.fromisoformat(at), str(batch_id))
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise InvalidArgument(
            FieldViolation("page.page_token", "not a token this service gave")
        ) from None
    if named != dataset:
        raise InvalidArgument(
            FieldViolation("page.page_token", f"a token for {named!r}, not {dataset!r}")
        )
    return position
