"""Training sets as the trainer and the evaluator read them: the referenced file (its
hash checked), its labelled rows, and train / validation / holdout by time, one
definition for the trainer that fits on them and the evaluator that judges on the same
holdout.

Rows are ordered by their label time (the moment a prediction would be made). The three
parts are consecutive time ranges; rows sharing a timestamp stay in one part, so nothing
in an earlier part happens after anything in a later one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from wavepod.runtime.status import FailedPrecondition, FieldViolation, InvalidArgument

# The time column of a training set (the feature service's BuildTrainingSet contract).
LABEL_TIME = "label_time"


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    valid: pl.DataFrame
    holdout: pl.DataFrame

    def sizes(self) -> dict[str, int]:
        return {
            "train": self.train.height,
            "valid": self.valid.height,
            "holdout": self.holdout.height,
        }

    def ranges(self) -> dict[str, str]:
        return {
            name: f"{part[LABEL_TIME].min()!s}..{part[LABEL_TIME].max()!s}"
            for name, part in (
                ("train", self.train),
                ("valid", self.valid),
                ("holdout", self.holdout),
            )
        }


def time_split(
    frame: pl.DataFrame, min_rows: int, valid_share: float = 0.15, holdout_share: float = 0.15
) -> Split:
    if frame.height < min_rows:
        raise FailedPrecondition(
            f"the training set has {frame.height} labelled rows; a run needs at least {min_rows}"
        )
    times = frame.get_column(LABEL_TIME)
    valid_from = times.quantile(1 - valid_share - holdout_share, "lower")
    holdout_from = times.quantile(1 - holdout_share, "lower")
    split = Split(
        train=frame.filter(pl.col(LABEL_TIME) < valid_from),
        valid=frame.filter(
            (pl.col(LABEL_TIME) >= valid_from) & (pl.col(LABEL_TIME) < holdout_from)
        ),
        holdout=frame.filter(pl.col(LABEL_TIME) >= holdout_from),
    )
    empty = [name for name, rows in split.sizes().items() if rows == 0]
    if empty:
        raise FailedPrecondition(
            f"splitting {frame.height} rows by {LABEL_TIME} leaves {', '.join(empty)} empty:"
            " the training set spans too few distinct times"
        )
    return split


def read_training_set(
    uri: str, expected_hash: str, field: str = "training_set.uri"
) -> pl.DataFrame:
    """The Parquet file at `uri`, after checking it is the one referenced (sha256)."""
    path = Path(uri.removeprefix("file://"))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidArgument(FieldViolation(field, f"cannot read {uri}: {error}")) from None
    actual = hashlib.sha256(data).hexdigest()
    if expected_hash and actual != expected_hash:
        raise FailedPrecondition(
            f"training set {uri} has sha256 {actual}, not {expected_hash}: it changed since"
            " it was referenced"
        )
    return pl.read_parquet(path)


def labelled(
    frame: pl.DataFrame, label: str, features: list[str], field: str = "label_column"
) -> pl.DataFrame:
    missing = [c for c in (label, LABEL_TIME, *features) if c not in frame.columns]
    if missing:
        raise InvalidArgument(FieldViolation(field, f"the training set has no column(s) {missing}"))
    if not frame.schema[label].is_numeric():
        raise InvalidArgument(
            FieldViolation(field, f"{label!r} is {frame.schema[label]}, not numeric")
        )
    # Censored rows carry a null label: a regression on the observed gap leaves them out.
    return frame.filter(pl.col(label).is_not_null() & pl.col(label).is_not_nan()).sort(LABEL_TIME)
