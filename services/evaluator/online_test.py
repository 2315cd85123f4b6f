"""Online metrics on a hand-computed example: late and corrected labels, shadow records,
unlabelled answers, daily windows and subgroups."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

from evaluator.online import online_metrics


def _prediction(pid: str, route: str, version: str, value: float, day: int, payer: str) -> dict:
    return {
        "prediction_id": pid,
        "route": route,
        "version": version,
        "prediction": value,
        "at": datetime(2026, 11, day, 12),
        "inputs": json.dumps({"payer": payer, "days_supply": 30}),
    }


PREDICTIONS = pl.DataFrame(
    [
        _prediction("a", "champion", "1", 30.0, 1, "medicare"),  # truth 33: error 3
        _prediction("a", "shadow", "2", 31.0, 1, "medicare"),  # shadow: error 2
        _prediction("b", "champion", "1", 60.0, 1, "commercial"),  # truth 50: error 10
        _prediction("c", "canary", "2", 28.0, 2, "medicare"),  # truth 30: error 2
        _prediction("d", "champion", "1", 90.0, 2, "commercial"),  # never labelled
    ]
)
FEEDBACK = pl.DataFrame(
    {
        "prediction_id": ["a", "b", "c", "b", None],
        "observed_value": [33.0, 70.0, 30.0, 50.0, 12.0],
        # b's first label (70) was corrected later (50); the last row names no prediction.
        "received_at": [datetime(2026, 11, d, 9) for d in (5, 5, 6, 9, 9)],
    }
)


def test_online_metrics_match_the_hand_computation() -> None:
    online = online_metrics(PREDICTIONS, FEEDBACK, ["payer"])
    assert (online.predictions, online.labelled) == (4, 3)
    assert online.coverage == pytest.approx(3 / 4)
    assert online.metrics["mae"] == pytest.approx((3 + 10 + 2) / 3)
    assert online.metrics["bias"] == pytest.approx((-3 + 10 - 2) / 3)
    assert online.by_version["1/champion"]["mae"] == pytest.approx(6.5)
    assert online.by_version["2/canary"]["mae"] == pytest.approx(2.0)
    assert online.by_version["2/shadow"]["mae"] == pytest.approx(2.0)
    assert [(w.start.day, w.labelled, w.mae) for w in online.windows] == [
        (1, 2, pytest.approx(6.5)),
        (2, 1, pytest.approx(2.0)),
    ]
    assert [(g.group, g.rows, g.metrics["mae"]) for g in online.subgroups] == [
        ("commercial", 1, pytest.approx(10.0)),
        ("medicare", 2, pytest.approx(2.5)),
    ]


def test_no_feedback_yet_means_no_metrics() -> None:
    online = online_metrics(PREDICTIONS, FEEDBACK.clear(), ["payer"])
    assert (online.predictions, online.labelled, online.metrics) == (4, 0, {})
    assert online.windows == [] and online.subgroups == []
