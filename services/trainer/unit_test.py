import time
from pathlib import Path

import numpy as np
import onnxmltools
import onnxruntime as ort
import polars as pl
import pytest
from onnxmltools.convert.common.data_types import FloatTensorType

from trainer.export import check_parity, float32_thresholds, to_onnx
from trainer.search import fit
from trainer.spec import Budget, TrainingSpec
from trainer.tracking import Tracking
from wavepod.runtime.status import FailedPrecondition, InvalidArgument, Unavailable
from wavepod.testing.mlflow import mlflow_server
from wavepod.training_data import LABEL_TIME, time_split


def test_time_split_keeps_every_earlier_split_before_every_later_one() -> None:
    days = pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 4, 9), eager=True)
    frame = pl.DataFrame({LABEL_TIME: days.gather(np.repeat(np.arange(100), 3)), "y": range(300)})
    split = time_split(frame, min_rows=10)
    ranges = [
        (p[LABEL_TIME].min(), p[LABEL_TIME].max())
        for p in (split.train, split.valid, split.holdout)
    ]
    assert str(ranges[0][1]) < str(ranges[1][0]) and str(ranges[1][1]) < str(ranges[2][0])
    assert sum(split.sizes().values()) == 300
    with pytest.raises(FailedPrecondition, match="at least 1000"):
        time_split(frame, min_rows=1000)
    one_day = frame.with_columns(pl.lit(days[0]).alias(LABEL_TIME))
    with pytest.raises(FailedPrecondition, match="too few distinct times"):
        time_split(one_day, min_rows=10)


def test_parity_beyond_the_tolerance_fails_with_the_figure() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)).astype(np.float32)
    model = fit({"n_estimators": 30, "objective": "regression_l1"}, x, x[:, 0] * 100, seed=1)
    proto = to_onnx(model, 4, "features", "prediction")
    assert check_parity(proto, model, x, 1e-4).max_abs_diff <= 1e-4
    # ONNX keeps leaf values and sums in float32: ~1e-5 from LightGBM's doubles here.
    with pytest.raises(
        FailedPrecondition, match=r"max \|onnx - native\| = .* over 500 rows exceeds 1e-09"
    ):
        check_parity(proto, model, x, 1e-9)


def test_thresholds_between_adjacent_float32_values_export_exactly() -> None:
    # A feature whose values are adjacent float32 numbers, and a label that depends on
    # telling them apart: LightGBM's double thresholds fall between them, and rounding
    # such a threshold to float32 lands on one of the values.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 3)).astype(np.float32)
    steps = rng.integers(0, 3, 5000)
    x[:, 0] = np.float32(1.0) + steps * np.finfo(np.float32).eps
    y = steps * 10 + x[:, 1] + rng.normal(size=5000)
    model = fit({"n_estimators": 20, "objective": "regression_l2"}, x, y, seed=1)
    naive = onnxmltools.convert_lightgbm(
        model, initial_types=[("features", FloatTensorType([None, 3]))], target_opset=15
    )
    session = ort.InferenceSession(naive.SerializeToString(), providers=["CPUExecutionProvider"])
    naive_diff = np.abs(session.run(None, {"features": x})[0].reshape(-1) - model.predict(x))
    assert naive_diff.max() > 1  # the converter alone gets these rows wrong

    assert np.array_equal(float32_thresholds(model).predict(x), model.predict(x))
    proto = to_onnx(model, 3, "features", "prediction")
    assert check_parity(proto, model, x, 1e-4).max_abs_diff <= 1e-4


def test_spec_rejects_a_zero_budget_and_names_each_field() -> None:
    spec = TrainingSpec("bad name!", "", "", "", Budget(0, 0), seed=1, training_set_uri="x")
    with pytest.raises(InvalidArgument) as error:
        spec.check()
    fields = {v.field for v in error.value.violations}
    assert fields == {
        "spec.model_name",
        "spec.feature_set.name",
        "spec.feature_set.version",
        "spec.label_column",
        "spec.budget.max_trials",
        "spec.budget.max_seconds",
        "spec.training_set.content_hash",
    }


def test_an_unreachable_mlflow_is_unavailable_within_seconds() -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable, match="MLflow at http://127.0.0.1:9"):
        Tracking("http://127.0.0.1:9").create_run("x", {})
    assert time.monotonic() - started < 60


def test_runs_left_running_by_a_stopped_trainer_are_marked_failed(tmp_path: Path) -> None:
    with mlflow_server(tmp_path / "mlflow") as uri:
        tracking = Tracking(uri)
        orphan = tracking.create_run("orphan", {"wavepod.model_name": "refill"})
        done = tracking.create_run("done", {"wavepod.model_name": "refill"})
        tracking.end(done, "FINISHED")
        assert tracking.fail_orphans() == 1
        run = tracking.get_run(orphan)
        assert run.info.status == "FAILED"
        assert "stopped before the run ended" in run.data.tags["wavepod.error"]
        assert tracking.get_run(done).info.status == "FINISHED"
        assert tracking.fail_orphans() == 0
