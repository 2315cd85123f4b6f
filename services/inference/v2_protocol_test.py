from __future__ import annotations

import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from inference.server import VERSION
from wavepod.runtime.testing.process import service_process


def test_tritonclient_talks_to_the_v2_server_unchanged() -> None:
    with service_process("inference.server", "inference") as proc:
        client = triton.InferenceServerClient(url=proc.address)
        assert client.is_server_live()
        assert client.is_server_ready()
        metadata = client.get_server_metadata()
        assert metadata.name == "wavepod-inference"
        assert metadata.version == VERSION
        with pytest.raises(InferenceServerException, match="not built yet"):
            client.is_model_ready("refill")
        client.close()
        assert proc.terminate(timeout=15) == 0
