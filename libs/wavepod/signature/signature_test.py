import math

import numpy as np
import polars as pl

from wavepod.signature import CATEGORICAL, NUMERIC, ModelSignature
from wavepod.signature.frames import encode_frame, infer_signature


def _signature() -> ModelSignature:
    train = pl.DataFrame(
        {"gap": [10.0, None, 30.0], "channel": ["retail", "mail", None], "y": [1.0, 2.0, 3.0]}
    )
    return infer_signature(train, ["gap", "channel"], "y", "refill:1")


def test_signature_round_trips_and_encodes_categories_by_their_training_codes() -> None:
    signature = _signature()
    gap, channel = signature.features
    assert (gap.kind, gap.minimum, gap.maximum, gap.nullable) == (NUMERIC, 10.0, 30.0, True)
    assert (channel.kind, channel.categories) == (CATEGORICAL, ("mail", "retail"))
    assert ModelSignature.from_json(signature.to_json()) == signature

    serving = pl.DataFrame({"channel": ["mail", "drone", None], "gap": [5.0, 7.0, 9.0]})
    encoded = encode_frame(signature, serving)
    assert encoded.dtype == np.float32 and encoded.shape == (3, 2)
    assert encoded[:, 0].tolist() == [5.0, 7.0, 9.0]  # signature order, not frame order
    assert encoded[0, 1] == 0.0
    assert math.isnan(encoded[1, 1]) and math.isnan(encoded[2, 1])  # unknown, missing
    # The serving encoder (rows, numpy only) gives the same codes as the training one.
    rows = serving.to_dicts()
    np.testing.assert_array_equal(signature.encode_rows(rows), encoded)


def test_violations_name_the_row_and_the_rule() -> None:
    signature = _signature()
    rows: list[dict[str, object]] = [
        {"gap": 20.0, "channel": "mail"},
        {"gap": "soon", "channel": 3, "colour": "red"},
        {"gap": 31.0, "channel": "drone"},
        {"gap": float("nan")},
    ]
    found = {(v.field, v.description.split(" ")[0]) for v in signature.violations(rows)}
    assert found == {
        ("rows[1].colour", "is"),
        ("rows[1].gap", "must"),
        ("rows[1].channel", "must"),
        ("rows[2].gap", "31"),
        ("rows[2].channel", "'drone'"),
        ("rows[3].gap", "must"),
    }
    assert signature.violations(rows[2:3], range_slack=0.1)[0].field == "rows[0].channel"
