"""Hyper-parameter search: Optuna's TPE over LightGBM, seeded.

Reproducible: the sampler and every model are seeded and LightGBM runs deterministic on
one thread, so the same data, seed and trial budget give the same trials and metrics.
(A run stopped by `max_seconds` instead of `max_trials` depends on machine speed.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna

from trainer.spec import Budget
from wavepod.metrics import regression_metrics

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    valid_mae: float
    seconds: float


@dataclass(frozen=True)
class SearchResult:
    model: lgb.LGBMRegressor  # the best trial's settings, refit on train + valid
    best: Trial
    trials: tuple[Trial, ...]


OnTrial = Callable[[Trial, Trial], None]  # (this trial, best so far)


def _params(trial: optuna.Trial) -> dict[str, Any]:
    return {
        # Runs are judged by MAE, so the trees fit absolute error (the conditional median):
        # refill gaps have a long late tail that drags a squared-error fit off the mode.
        "objective": "regression_l1",
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=25),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 96, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def fit(params: dict[str, Any], x: np.ndarray, y: np.ndarray, seed: int) -> lgb.LGBMRegressor:
    model = lgb.LGBMRegressor(
        **params,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )
    return model.fit(x, y)


def search(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    budget: Budget,
    seed: int,
    on_trial: OnTrial,
) -> SearchResult:
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    trials: list[Trial] = []
    best: dict[str, Any] = {}

    def objective(trial: optuna.Trial) -> float:
        params = _params(trial)
        started = time.perf_counter()
        model = fit(params, *train, seed=seed)
        mae = regression_metrics(valid[1], np.asarray(model.predict(valid[0])))["mae"]
        result = Trial(trial.number, params, mae, time.perf_counter() - started)
        trials.append(result)
        if not best or mae < best["trial"].valid_mae:
            best.update(trial=result)
        on_trial(result, best["trial"])
        return mae

    study.optimize(objective, n_trials=budget.max_trials, timeout=budget.max_seconds)
    # The chosen settings refit on train and validation together: the newest rows before
    # the holdout are the most like what the model will answer (after a change in the
    # world, often the only ones that show it). The holdout still judges the refit model.
    x = np.concatenate([train[0], valid[0]])
    y = np.concatenate([train[1], valid[1]])
    return SearchResult(fit(best["trial"].params, x, y, seed=seed), best["trial"], tuple(trials))
