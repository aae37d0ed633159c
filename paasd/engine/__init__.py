"""An async facade over the (blocking) `docker` SDK, shared by the docker runtime
and the builder.

Every call runs in a worker thread behind a CapacityLimiter, so the event loop
never blocks on the engine; the connection is made lazily and re-made after
the engine went away, and the SDK's exceptions become `EngineError` with a
message a user can act on (an engine that is not running says how to start it).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from ..errors import PaasdError

log = logging.getLogger("paasd.engine")

T = TypeVar("T")

API_VERSION = "auto"  # negotiate: Debian's engine is 20.10 (API 1.41)
MANAGED = "paasd.dev/managed"
STATE = "paasd.dev/state-dir"

HOW_TO_START = ("start it with `systemctl start docker` (or `dockerd &` as root); "
                "install it with `apt-get install docker.io`")


class EngineError(PaasdError):
    """The Docker engine refused or failed a call; the message says what to do."""


class EngineUnavailable(EngineError):
    """The Docker engine cannot be reached."""


def state_label(state_dir: str) -> str:
    """Marks the containers of one daemon, so two daemons on one engine never fight."""
    return hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]


class Engine:
    def __init__(self, url: str = "", limit: int = 8) -> None:
        self.url = url
        self.limiter = trio.CapacityLimiter(limit)
        self._client: Any = None
        self._lock = threading.Lock()

    def where(self) -> str:
        return self.url or "the local Docker socket (or $DOCKER_HOST)"

    def client(self) -> Any:
        """The SDK client (blocking; call from a worker thread)."""
        import docker

        with self._lock:
            if self._client is None:
                try:
                    if self.url:
                        self._client = docker.DockerClient(base_url=self.url,
                                                           version=API_VERSION)
                    else:
                        self._client = docker.from_env(version=API_VERSION)
                except docker.errors.DockerException as exc:
                    raise EngineUnavailable(
                        f"the Docker engine at {self.where()} is not reachable ({exc}); "
                        f"{HOW_TO_START}") from None
            return self._client

    def _forget(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a dead connection pool
                log.debug("closing the docker client failed", exc_info=True)

    def run(self, fn: Callable[[Any], T]) -> T:
        """Call `fn(client)` translating the SDK's errors (blocking)."""
        import docker
        import requests

        client = self.client()
        try:
            return fn(client)
        except (requests.ConnectionError, docker.errors.DockerException) as exc:
            if isinstance(exc, docker.errors.APIError | docker.errors.BuildError):
                raise
            if isinstance(exc, requests.ReadTimeout):
                raise
            self._forget()
            raise EngineUnavailable(
                f"lost the Docker engine at {self.where()} ({exc}); {HOW_TO_START}") from None

    async def call(self, fn: Callable[[Any], T], *, abandon: bool = False,
                   limiter: trio.CapacityLimiter | None = None) -> T:
        """`fn(client)` in a worker thread. `abandon` for calls that may block for long
        (waits, log streams): cancelling gives up on them instead of waiting."""
        return await trio.to_thread.run_sync(self.run, fn, abandon_on_cancel=abandon,
                                             limiter=limiter or self.limiter)

    async def reachable(self) -> str | None:
        """None when the engine answers a ping; else why not (with how to start it)."""
        try:
            await self.call(lambda c: c.ping())
        except EngineError as exc:
            return str(exc)
        except Exception as exc:
            self._forget()
            return f"the Docker engine at {self.where()} does not answer ({exc}); {HOW_TO_START}"
        return None
