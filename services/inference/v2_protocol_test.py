"""The v2 protocol through tritonclient, unchanged, against the server as a process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from tritonclient.utils import InferenceServerException

from inference.repository import ModelRepository
from inference.server import VERSION
from inference.testing import FEATURES, INPUT, OUTPUT, TreeModel, publish, spec, tree_model
from wavepod.runtime.testing.process import ServiceProcess, service_process

MODEL = "refill"


@pytest.fixture(scope="module")
def models() -> tuple[TreeModel, TreeModel]:
    return tree_model(seed=0), tree_model(seed=1)


@pytest.fixture
def server(
    tmp_path: Path, models: tuple[TreeModel, TreeModel]
) -> Iterator[tuple[ServiceProcess, ModelRepository]]:
    repository = ModelRepository(tmp_path / "models")
    publish(repository, MODEL, 1, models[0], spec(max_batch_size=64, max_queue_delay_us=2000))
    env = {"WAVEPOD_INFERENCE_MODEL_REPOSITORY": str(repository.root)}
    with service_process("inference.server", "inference", env) as proc:
        yield proc, repository
        assert proc.terminate(timeout=20) == 0


def _input(rows: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput(INPUT, list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    return tensor


def _predict(client: triton.InferenceServerClient, rows: np.ndarray) -> tuple[np.ndarray, str]:
    result = client.infer(MODEL, [_input(rows)], outputs=[triton.InferRequestedOutput(OUTPUT)])
    return result.as_numpy(OUTPUT).reshape(-1), result.get_response().model_version


def test_tritonclient_speaks_the_v2_protocol_unchanged(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, _ = server
    model = models[0]
    client = triton.InferenceServerClient(url=proc.address)
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    assert (metadata.name, metadata.version) == ("wavepod-inference", VERSION)
    assert "model_repository" in metadata.extensions
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "1")
    assert not client.is_model_ready(MODEL, "7") and not client.is_model_ready("nope")

    meta = client.get_model_metadata(MODEL)
    assert meta.platform == "onnxruntime_onnx" and list(meta.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        (INPUT, "FP32", [-1, FEATURES])
    ]
    config = client.get_model_config(MODEL).config
    assert config.max_batch_size == 64
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    # Tree ensembles are ai.onnx.ml operators: CPU, and the config says why.
    assert config.parameters["execution_provider"].string_value == "CPUExecutionProvider"
    assert config.parameters["execution_provider_reason"].string_value

    one, version = _predict(client, model.sample[:1])
    assert version == "1"
    np.testing.assert_allclose(one, model.expected[:1], atol=1e-4)
    many, _ = _predict(client, model.sample[:50])
    np.testing.assert_allclose(many, model.expected[:50], atol=1e-4)

    index = client.get_model_repository_index()
    assert [(m.name, m.version, m.state) for m in index.models] == [(MODEL, "1", "READY")]
    stats = client.get_inference_statistics(MODEL).model_stats[0]
    assert stats.inference_count == 1 + 50  # rows; the warm-up is not counted
    assert stats.inference_stats.success.count == 2

    client.unload_model(MODEL)
    assert not client.is_model_ready(MODEL)
    with pytest.raises(InferenceServerException, match="not ready"):
        _predict(client, model.sample[:1])
    client.load_model(MODEL)
    assert client.is_model_ready(MODEL)

    async def aio() -> np.ndarray:
        async with triton_aio.InferenceServerClient(url=proc.address) as aclient:
            inputs = [triton_aio.InferInput(INPUT, [3, FEATURES], "FP32")]
            inputs[0].set_data_from_numpy(model.sample[:3])
            result = await aclient.infer(MODEL, inputs)
            return result.as_numpy(OUTPUT).reshape(-1)

    np.testing.assert_allclose(asyncio.run(aio()), model.expected[:3], atol=1e-4)
    client.close()


def test_bad_requests_get_clear_statuses(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, _ = server
    client = triton.InferenceServerClient(url=proc.address)
    wrong_width = np.zeros((2, FEATURES + 1), dtype=np.float32)
    with pytest.raises(InferenceServerException) as error:
        _predict(client, wrong_width)
    assert error.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert f"inputs[{INPUT}].shape" in error.value.message()

    as_double = triton.InferInput(INPUT, [1, FEATURES], "FP64")
    as_double.set_data_from_numpy(np.zeros((1, FEATURES), dtype=np.float64))
    with pytest.raises(InferenceServerException, match="the model takes FP32"):
        client.infer(MODEL, [as_double])

    too_many = np.zeros((65, FEATURES), dtype=np.float32)
    with pytest.raises(InferenceServerException, match="exceeds max_batch_size 64"):
        _predict(client, too_many)

    with pytest.raises(InferenceServerException) as error:
        client.infer("unknown-model", [_input(models[0].sample[:1])])
    assert error.value.status() == "StatusCode.NOT_FOUND"
    client.close()


def test_dynamic_batching_coalesces_concurrent_requests(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, _ = server
    rows = models[0].sample

    async def burst() -> list[np.ndarray]:
        async with triton_aio.InferenceServerClient(url=proc.address) as client:

            async def one(i: int) -> np.ndarray:
                tensor = triton_aio.InferInput(INPUT, [1, FEATURES], "FP32")
                tensor.set_data_from_numpy(rows[i : i + 1])
                return (await client.infer(MODEL, [tensor])).as_numpy(OUTPUT).reshape(-1)

            return await asyncio.gather(*(one(i) for i in range(200)))

    answers = asyncio.run(burst())
    # Every caller got its own row back, though rows ran in shared batches.
    np.testing.assert_allclose(np.concatenate(answers), models[0].expected[:200], atol=1e-4)
    client = triton.InferenceServerClient(url=proc.address)
    stats = client.get_inference_statistics(MODEL).model_stats[0]
    assert stats.inference_count == 200
    assert stats.execution_count < 200
    assert max(b.batch_size for b in stats.batch_stats) > 1
    client.close()


def test_tampered_model_is_refused_and_the_old_version_keeps_serving(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, repository = server
    publish(repository, MODEL, 2, models[1], spec())
    model_file = repository.root / MODEL / "2" / "model.onnx"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))

    client = triton.InferenceServerClient(url=proc.address)
    with pytest.raises(InferenceServerException) as error:
        client.load_model(MODEL)
    assert error.value.status() == "StatusCode.FAILED_PRECONDITION"
    assert "does not match" in error.value.message()
    values, version = _predict(client, models[0].sample[:5])
    assert version == "1"
    np.testing.assert_allclose(values, models[0].expected[:5], atol=1e-4)
    index = client.get_model_repository_index().models[0]
    assert index.state == "READY" and index.version == "1" and "sha256" in index.reason
    client.close()


def test_swapping_versions_under_load_fails_no_request(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, repository = server
    rows = models[0].sample
    versions_seen: set[str] = set()
    failures: list[str] = []

    async def load_and_swap() -> None:
        async with triton_aio.InferenceServerClient(url=proc.address) as client:
            stop = asyncio.Event()

            async def caller(i: int) -> None:
                while not stop.is_set():
                    tensor = triton_aio.InferInput(INPUT, [1, FEATURES], "FP32")
                    tensor.set_data_from_numpy(rows[i : i + 1])
                    try:
                        result = await client.infer(MODEL, [tensor])
                    except InferenceServerException as error:
                        failures.append(str(error))
                    else:
                        versions_seen.add(result.get_response().model_version)

            callers = [asyncio.create_task(caller(i)) for i in range(16)]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(publish, repository, MODEL, 2, models[1], spec())
            await client.load_model(MODEL)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*callers)

    asyncio.run(load_and_swap())
    assert failures == []
    assert versions_seen == {"1", "2"}
    client = triton.InferenceServerClient(url=proc.address)
    values, version = _predict(client, models[1].sample[:5])
    assert version == "2"
    np.testing.assert_allclose(values, models[1].expected[:5], atol=1e-4)
    client.close()


def test_a_challenger_serves_beside_the_champion_until_published_alone(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, repository = server
    publish(repository, MODEL, 2, models[1], spec(), keep_serving=True)
    client = triton.InferenceServerClient(url=proc.address)
    client.load_model(MODEL)
    assert client.is_model_ready(MODEL, "1") and client.is_model_ready(MODEL, "2")
    index = client.get_model_repository_index().models
    assert [(m.version, m.state) for m in index] == [("1", "READY"), ("2", "READY")]
    for version, model in (("1", models[0]), ("2", models[1])):
        result = client.infer(MODEL, [_input(model.sample[:4])], model_version=version)
        assert result.get_response().model_version == version
        np.testing.assert_allclose(
            result.as_numpy(OUTPUT).reshape(-1), model.expected[:4], atol=1e-4
        )
    assert _predict(client, models[1].sample[:1])[1] == "2"  # no version named: the newest

    # Rolling back: version 1 published alone serves alone, though 2 is newer.
    publish(repository, MODEL, 1, models[0], spec())
    client.load_model(MODEL)
    assert not client.is_model_ready(MODEL, "2")
    with pytest.raises(InferenceServerException, match=r"serving versions \[1\]"):
        client.infer(MODEL, [_input(models[0].sample[:1])], model_version="2")
    assert _predict(client, models[0].sample[:1])[1] == "1"
    client.close()


def test_stream_infer_reports_errors_in_the_stream(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, _ = server
    results: list[object] = []
    client = triton.InferenceServerClient(url=proc.address)
    client.start_stream(callback=lambda result, error: results.append(error or result))
    client.async_stream_infer(MODEL, [_input(models[0].sample[:2])])
    client.async_stream_infer(MODEL, [_input(np.zeros((1, 3), dtype=np.float32))])
    client.stop_stream()
    assert len(results) == 2
    assert isinstance(results[1], InferenceServerException)
    client.close()


def test_a_streams_requests_share_batches_and_answer_in_order(server, models) -> None:  # type: ignore[no-untyped-def]
    proc, _ = server
    model, n = models[0], 16
    client = triton.InferenceServerClient(url=proc.address)

    def counts() -> tuple[int, int]:
        stats = client.get_inference_statistics(MODEL).model_stats[0]
        return stats.inference_count, stats.execution_count

    rows_before, runs_before = counts()
    results: list[triton.InferResult] = []
    errors: list[object] = []
    client.start_stream(
        callback=lambda result, error: errors.append(error) if error else results.append(result)
    )
    for i in range(n):
        client.async_stream_infer(MODEL, [_input(model.sample[i : i + 1])], request_id=f"r{i}")
    client.stop_stream()  # waits for every answer
    assert errors == []
    assert [r.get_response().id for r in results] == [f"r{i}" for i in range(n)]
    values = [r.as_numpy(OUTPUT).reshape(-1)[0] for r in results]
    np.testing.assert_allclose(values, model.expected[:n], atol=1e-4)
    rows, runs = counts()
    assert rows - rows_before == n
    # Computed one at a time, every request would be a run of its own.
    assert runs - runs_before < n
    client.close()


def test_grpc_reflection_lists_the_v2_service(server) -> None:  # type: ignore[no-untyped-def]
    proc, _ = server
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(proc.address) as channel:
        replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert "inference.GRPCInferenceService" in names
