"""Every kind of outgoing call (unary, server-, client- and bidirectional streaming)
carries the service's token and a deadline: a real server on loopback reports what it
received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from wavepod.runtime.channels import connect
from wavepod.runtime.settings import ServiceSettings

SERVICE = "wavepod.test.Seen"


def _seen(context: grpc.aio.ServicerContext) -> bytes:
    """What the call arrived with: its authorization header and whether it has a deadline."""
    auth = dict(context.invocation_metadata() or ()).get("authorization", "none")
    remaining = context.time_remaining()
    deadline = "deadline" if remaining is not None and remaining < 3600 else "no-deadline"
    return f"{auth}|{deadline}".encode()


async def _unary_unary(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _seen(context)


async def _unary_stream(_request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield _seen(context)


async def _stream_unary(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    async for _ in requests:
        pass
    return _seen(context)


async def _stream_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for _ in requests:
        pass
    yield _seen(context)


async def _calls(token: str | None) -> dict[str, str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "UnaryUnary": grpc.unary_unary_rpc_method_handler(_unary_unary),
                    "UnaryStream": grpc.unary_stream_rpc_method_handler(_unary_stream),
                    "StreamUnary": grpc.stream_unary_rpc_method_handler(_stream_unary),
                    "StreamStream": grpc.stream_stream_rpc_method_handler(_stream_stream),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    settings = ServiceSettings.model_validate({"auth_token": token} if token else {})
    channel = connect(f"127.0.0.1:{port}", settings, timeout=30)
    try:
        return {
            "unary-unary": (await channel.unary_unary(f"/{SERVICE}/UnaryUnary")(b"")).decode(),
            "unary-stream": await _first(channel.unary_stream(f"/{SERVICE}/UnaryStream")(b"")),
            "stream-unary": (
                await channel.stream_unary(f"/{SERVICE}/StreamUnary")(iter([b"", b""]))
            ).decode(),
            "stream-stream": await _first(
                channel.stream_stream(f"/{SERVICE}/StreamStream")(iter([b""]))
            ),
        }
    finally:
        await channel.close()
        await server.stop(None)


async def _first(call: AsyncIterator[bytes]) -> str:
    async for reply in call:
        return reply.decode()
    raise AssertionError("the stream ended without a reply")


def test_every_call_kind_carries_the_token_and_a_deadline() -> None:
    seen = asyncio.run(_calls("s3cret"))
    assert seen == dict.fromkeys(
        ("unary-unary", "unary-stream", "stream-unary", "stream-stream"), "Bearer s3cret|deadline"
    )


def test_without_a_token_calls_still_get_deadlines() -> None:
    seen = asyncio.run(_calls(None))
    assert set(seen.values()) == {"none|deadline"}
