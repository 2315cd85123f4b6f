"""The drift benchmark's peer: Evidently's DataDriftPreset on two Parquet files.

    drift_evidently.pex REFERENCE.parquet CURRENT.parquet

Built from its own resolve (`evidently`) and run by tests/benchmarks/drift.py as a
process. Prints one JSON line: the seconds the report took (reading the files is not
counted) and how many columns it found drifted.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def main() -> None:
    reference = pd.read_parquet(sys.argv[1])
    current = pd.read_parquet(sys.argv[2])
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    seconds = time.perf_counter() - started
    drifted = snapshot.dict()["metrics"][0]["value"]["count"]
    print(json.dumps({"seconds": seconds, "drifted_columns": float(drifted)}))


if __name__ == "__main__":
    main()
