"""The ingest-backed lake presents the feature service's token to an ingest service that
checks tokens, and says so clearly when it has none or one without the `lineage` role."""

from __future__ import annotations

from pathlib import Path

import pytest

from wavepod.lake import open_lake
from wavepod.runtime.auth import hash_token
from wavepod.runtime.status import FailedPrecondition, NotFound
from wavepod.runtime.testing.process import service_process


def test_ingest_lake_authenticates_with_the_service_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"{hash_token('feature-token')} feature lineage\n"
        f"{hash_token('gateway-token')} gateway events\n"
    )
    env = {
        "WAVEPOD_INGEST_LAKE_ROOT": str(tmp_path / "lake"),
        "WAVEPOD_INGEST_AUTH_TOKENS_FILE": str(tokens),
    }
    with service_process("ingest.server", "ingest", env) as ingest:
        # Authenticated: the answer is about the dataset, not the caller.
        with pytest.raises(NotFound, match="unknown dataset 'fills'"):
            open_lake(f"ingest://{ingest.address}", "feature-token").files("fills")
        with pytest.raises(FailedPrecondition, match="refused this service's token"):
            open_lake(f"ingest://{ingest.address}").files("fills")
        # Least privilege: a service allowed to stream events may not read lineage.
        with pytest.raises(FailedPrecondition, match="PERMISSION_DENIED.*lineage"):
            open_lake(f"ingest://{ingest.address}", "gateway-token").files("fills")
