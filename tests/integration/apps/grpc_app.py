"""A gRPC app for the tests (generic handlers, no generated code): h2c on $PORT."""

import os
import signal
import sys
from collections.abc import Iterator
from concurrent import futures

import grpc


def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    return b"hello " + request + b" from " + os.environ.get("K_REVISION", "?").encode()


def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for i in range(int(request)):
        yield b"item %d" % i


server = grpc.server(futures.ThreadPoolExecutor(8))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("paasd.Test", {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
}),))
server.add_insecure_port(f"127.0.0.1:{os.environ['PORT']}")
server.start()
signal.signal(signal.SIGTERM, lambda *_: (server.stop(1), sys.exit(0)))
server.wait_for_termination()
