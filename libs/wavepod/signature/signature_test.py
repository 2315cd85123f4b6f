import math

import numpy as np
import polars as pl

from wavepod.signature import CATEGORICAL, NUMERIC, ModelSignature


def test_signature_round_trips_and_encodes_categories_by_their_training_codes() -> None:
    train = pl.DataFrame(
        {"gap": [10.0, None, 30.0], "channel": ["retail", "mail", None], "y": [1.0, 2.0, 3.0]}
    )
    signature = ModelSignature.infer(train, ["gap", "channel"], "y", "refill:v1")
    gap, channel = signature.features
    assert (gap.kind, gap.minimum, gap.maximum, gap.nullable) == (NUMERIC, 10.0, 30.0, True)
    assert (channel.kind, channel.categories) == (CATEGORICAL, ("mail", "retail"))
    assert ModelSignature.from_json(signature.to_json()) == signature

    serving = pl.DataFrame({"channel": ["mail", "drone", None], "gap": [5.0, 7.0, 9.0]})
    encoded = signature.encode(serving)
    assert encoded.dtype == np.float32 and encoded.shape == (3, 2)
    assert encoded[:, 0].tolist() == [5.0, 7.0, 9.0]  # signature order, not frame order
    assert encoded[0, 1] == 0.0
    assert math.isnan(encoded[1, 1]) and math.isnan(encoded[2, 1])  # unknown, missing
