"""`reach = "port-forward"`: each pod behind a loopback port, tunnelled through the API
server, for clusters whose pod network this machine cannot route to.

Per pod, a listener on 127.0.0.1 (a free port) stands for the pod's port: every
connection the ingress (or paasd's probe) opens to it becomes one port-forward
stream to the pod (`kubectl port-forward`'s protocol, through the client's
websocket transport), and bytes are copied both ways until either side closes.
The ingress pools its upstream connections, so a stream carries many requests.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from .cluster import Cluster, KubeError

log = logging.getLogger("paasd.runtime.kubernetes")

CHUNK = 65536


class Tunnel:
    """One pod's loopback port while it exists."""

    def __init__(self, cluster: Cluster, namespace: str, pod: str, port: int) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.pod = pod
        self.port = port  # the pod's
        self.local_port = 0
        self.scope = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        with self.scope:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            self.local_port = listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(trio.serve_listeners, self._connection, listeners,
                                            handler_nursery=nursery))
                task_status.started(self.local_port)
                await trio.sleep_forever()

    def close(self) -> None:
        self.scope.cancel()

    async def _connection(self, client: trio.SocketStream) -> None:
        async with client:
            try:
                sock = await self.cluster.open_forward(self.namespace, self.pod, self.port)
            except KubeError as exc:
                log.debug("port-forward to %s/%s failed: %s", self.namespace, self.pod, exc)
                return
            upstream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(_copy, client, upstream, nursery.cancel_scope)
                nursery.start_soon(_copy, upstream, client, nursery.cancel_scope)


async def _copy(source: trio.SocketStream, dest: trio.SocketStream,
                done: trio.CancelScope) -> None:
    """Copy until one side closes; then close both (an HTTP peer that closes has read
    everything it wanted, and the forward stream has no half-close)."""
    try:
        while data := await source.receive_some(CHUNK):
            await dest.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    done.cancel()


__all__ = ["Tunnel"]
