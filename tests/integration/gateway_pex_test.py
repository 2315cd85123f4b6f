"""The gateway's PEX stays lean: no model-training or dataframe stacks inside."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

GATEWAY_PEX = Path("services.gateway/server.pex")
FORBIDDEN = ("mlflow", "scikit_learn", "sklearn", "pandas", "lightgbm", "optuna", "polars")


def test_gateway_pex_carries_no_heavy_stacks() -> None:
    with zipfile.ZipFile(GATEWAY_PEX) as pex:
        info = json.loads(pex.read("PEX-INFO"))
        distributions = {name.lower() for name in info["distributions"]}
    assert any(d.startswith("grpcio-") for d in distributions), distributions
    heavy = sorted(d for d in distributions if d.startswith(FORBIDDEN))
    assert not heavy, f"gateway PEX carries {heavy}"
