"""What a training run is asked to do, checked before any work starts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wavepod.runtime.status import FieldViolation, InvalidArgument

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Budget:
    max_trials: int
    max_seconds: int


@dataclass(frozen=True)
class TrainingSpec:
    model_name: str
    feature_set: str
    feature_set_version: str
    label: str
    budget: Budget
    seed: int
    # Reuse this training set (Parquet URI + sha256) instead of building one.
    training_set_uri: str = ""
    training_set_hash: str = ""
    # A feature whose value is itself a prediction (refill: days_supply, i.e. next fill =
    # last fill + days supply); empty: the training label's mean.
    baseline_feature: str = ""

    def check(self) -> None:
        problems = []
        if not MODEL_NAME.match(self.model_name):
            problems.append(
                FieldViolation(
                    "spec.model_name",
                    "letters, digits, '_', '.', '-'; 1 to 128, got " f"{self.model_name!r}",
                )
            )
        if not self.feature_set:
            problems.append(FieldViolation("spec.feature_set.name", "is required"))
        if not self.feature_set_version:
            problems.append(FieldViolation("spec.feature_set.version", "is required"))
        if not self.label:
            problems.append(FieldViolation("spec.label_column", "is required"))
        if self.budget.max_trials <= 0:
            problems.append(
                FieldViolation("spec.budget.max_trials", "must be at least 1 (a budget of zero)")
            )
        if self.budget.max_seconds <= 0:
            problems.append(
                FieldViolation("spec.budget.max_seconds", "must be at least 1 (a budget of zero)")
            )
        if self.training_set_uri and not self.training_set_hash:
            problems.append(
                FieldViolation(
                    "spec.training_set.content_hash", "is required with a training set uri"
                )
            )
        if problems:
            raise InvalidArgument(problems)
