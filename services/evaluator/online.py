"""Online metrics: what the model's answers were worth, once outcomes arrive.

The gateway's prediction log and the feedback it forwarded both land in the lake. A
prediction counts once its feedback arrives, however late (joined on the prediction id;
a later feedback for the same prediction corrects an earlier one). Shadow records are
scored apart from what callers got. Windows are by prediction time, so a late label
updates the window its prediction belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from wavepod.metrics import GroupMetrics, regression_metrics, subgroup_metrics

SHADOW = "shadow"


@dataclass(frozen=True)
class Window:
    start: datetime
    labelled: int
    mae: float


@dataclass(frozen=True)
class OnlineMetrics:
    predictions: int  # answers given (shadow records not counted)
    labelled: int  # of which an outcome arrived
    metrics: dict[str, float]  # over the labelled answers; empty when none
    by_version: dict[str, dict[str, float]]  # what each version answered (shadow too)
    windows: list[Window]
    subgroups: list[GroupMetrics]

    @property
    def coverage(self) -> float:
        return self.labelled / self.predictions if self.predictions else 0.0


def latest_feedback(feedback: pl.DataFrame) -> pl.DataFrame:
    """One observed value per prediction id: the one received last."""
    return (
        feedback.filter(pl.col("prediction_id").is_not_null())
        .sort("received_at")
        .group_by("prediction_id")
        .agg(pl.col("observed_value").last())
    )


def online_metrics(
    predictions: pl.DataFrame,
    feedback: pl.DataFrame,
    subgroups: Sequence[str],
    window: str = "1d",
) -> OnlineMetrics:
    joined = predictions.join(latest_feedback(feedback), on="prediction_id", how="inner")
    served = joined.filter(pl.col("route") != SHADOW)
    answered = predictions.filter(pl.col("route") != SHADOW).height
    truth = served["observed_value"].to_numpy().astype(np.float64)
    predicted = served["prediction"].to_numpy().astype(np.float64)
    by_version = {
        f"{version}/{route}": regression_metrics(
            part["observed_value"].to_numpy(), part["prediction"].to_numpy()
        )
        for (version, route), part in joined.group_by(["version", "route"])
    }
    windows = [
        Window(row["at"], row["labelled"], row["mae"])
        for row in served.sort("at")
        .group_by_dynamic("at", every=window)
        .agg(
            pl.len().alias("labelled"),
            (pl.col("prediction") - pl.col("observed_value")).abs().mean().alias("mae"),
        )
        .to_dicts()
    ]
    groups = [
        g
        for column in subgroups
        for g in subgroup_metrics(
            truth,
            predicted,
            column,
            served["inputs"].str.json_path_match(f"$.{column}").to_list(),
        )
    ]
    return OnlineMetrics(
        answered,
        served.height,
        regression_metrics(truth, predicted) if served.height else {},
        {k: by_version[k] for k in sorted(by_version)},
        windows,
        groups if served.height else [],
    )
