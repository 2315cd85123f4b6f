"""Servicers for RPCs that exist in the contract but are not built yet.

They answer UNIMPLEMENTED with a message naming the missing capability, instead of
gRPC's anonymous "Method not implemented!". A service that builds some RPCs subclasses
the result and overrides those methods.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor


def unbuilt(base: type[Any], service: ServiceDescriptor, capability: str) -> type[Any]:
    """A subclass of `base` (a generated servicer) whose RPCs answer UNIMPLEMENTED."""

    def answer(method: str) -> Any:
        async def rpc(self: Any, _request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{service.full_name}.{method} is not built yet: {capability}",
            )

        return rpc

    methods = {m.name: answer(m.name) for m in service.methods}
    return type(f"Unbuilt{base.__name__}", (base,), methods)
