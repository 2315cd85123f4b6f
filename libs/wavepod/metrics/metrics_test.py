import numpy as np
import pytest

from wavepod.metrics import calibration, regression_metrics, subgroup_metrics


def test_metrics_match_a_hand_computed_example() -> None:
    truth = np.array([30.0, 30.0, 60.0, 90.0])
    predicted = np.array([28.0, 40.0, 60.0, 81.0])  # errors -2, +10, 0, -9
    metrics = regression_metrics(truth, predicted)
    assert metrics["mae"] == pytest.approx(21 / 4)
    assert metrics["rmse"] == pytest.approx(np.sqrt((4 + 100 + 0 + 81) / 4))
    assert metrics["bias"] == pytest.approx(-1 / 4)
    assert metrics["within_7"] == pytest.approx(2 / 4)

    groups = subgroup_metrics(truth, predicted, "channel", ["mail", "retail", "mail", None])
    assert [(g.group, g.rows, g.metrics["mae"]) for g in groups] == [
        ("(none)", 1, 9.0),
        ("mail", 2, 1.0),
        ("retail", 1, 10.0),
    ]


def test_calibration_bins_cover_every_row() -> None:
    rng = np.random.default_rng(0)
    predicted = rng.uniform(0, 100, 1000)
    truth = predicted + 5  # a model that runs 5 days early everywhere
    bins = calibration(truth, predicted)
    assert sum(b["rows"] for b in bins) == 1000 and len(bins) == 10
    assert all(b["mean_error"] == pytest.approx(-5) for b in bins)
