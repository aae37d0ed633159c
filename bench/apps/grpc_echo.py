"""A gRPC unary echo on $PORT over h2c (grpcio, generic handler: no generated code)."""

import os
import signal
import sys
from concurrent import futures

import grpc

server = grpc.server(futures.ThreadPoolExecutor(4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {
    "Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request),
}),))
server.add_insecure_port(f"127.0.0.1:{os.environ['PORT']}")
server.start()
signal.signal(signal.SIGTERM, lambda *_: (server.stop(0), sys.exit(0)))
server.wait_for_termination()
