"""The grpc probe handler against a real gRPC server: grpc.health.v1.Health/Check over
h2c, SERVING passes, NOT_SERVING and an unknown service fail."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc  # grpcio: a dev dependency, as for the data-plane tests
import pytest

from paasd.runtime.local.probes import grpc_serving

pytestmark = [pytest.mark.integration, pytest.mark.trio]


def server(status: dict[bytes, bytes]) -> tuple[Any, int]:
    def check(request: bytes, context: Any) -> bytes:
        name = request[2:] if request else b""
        if name not in status:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return status[name]

    handler = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=lambda b: b, response_serializer=lambda b: b)})
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    s.add_generic_rpc_handlers((handler,))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    return s, port


async def test_the_grpc_probe_reads_the_health_service() -> None:
    s, port = server({b"": b"\x08\x01", b"app": b"\x08\x02"})  # SERVING, NOT_SERVING
    try:
        assert await grpc_serving("127.0.0.1", port, "", 2.0) is True
        assert await grpc_serving("127.0.0.1", port, "app", 2.0) is False
        assert await grpc_serving("127.0.0.1", port, "other", 2.0) is False
    finally:
        s.stop(0)
    assert await grpc_serving("127.0.0.1", port, "", 0.5) is False  # nothing listens
