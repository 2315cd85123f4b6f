from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from wavepod.values import from_value, to_value


@pytest.mark.parametrize(
    "value", [None, True, False, 0, -7, 2**40, 1.5, "", "mail", datetime(2024, 2, 29, 13, 5, 7)]
)
def test_values_round_trip(value: object) -> None:
    back = from_value(to_value(value))
    assert back == value and type(back) is type(value)


def test_nan_is_null_and_times_are_utc() -> None:
    assert from_value(to_value(math.nan)) is None
    assert from_value(to_value(date(2024, 1, 2))) == datetime(2024, 1, 2)
    aware = datetime(2024, 1, 2, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    assert from_value(to_value(aware)) == datetime(2024, 1, 2, 1, 0)
    assert from_value(to_value(datetime(2024, 1, 2, tzinfo=UTC))) == datetime(2024, 1, 2)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError, match="no wire type for bytes"):
        to_value(b"x")
