"""The daemon: one trio root nursery that owns every component.

Start order is dependency order (runtime adopts what it finds → reconciler →
ingress → control API) and "ready" is reported last. Shutdown is the reverse:
stop accepting, drain in-flight requests within the grace period, stop every
instance, then cancel the root scope so nothing outlives the daemon.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from ..api.prometheus import MetricsServer
from ..api.routes import ControlApi
from ..autoscaler.loop import Autoscaler
from ..builder import Builder
from ..config import Config, load_config
from ..engine import Engine
from ..errors import ConfigError, PaasdError
from ..hub import Hub
from ..ingress.proxy import Ingress
from ..reconciler import loop as reconciler
from ..runtime.docker import DockerRuntime
from ..runtime.process import ProcessRuntime
from ..store import Store
from ..systemd import sdnotify
from ..systemd.activation import adopt
from ..systemd.watchdog import CountingWakeup, summary, supervise

log = logging.getLogger("paasd")


class DaemonError(PaasdError):
    """The daemon cannot start; the message says what to change."""


async def open_unix_listener(path: str) -> trio.SocketListener:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists() or p.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(p))
        except OSError:
            p.unlink()  # stale socket of a daemon that did not shut down cleanly
        else:
            raise DaemonError(f"another paasd is already listening on {p}; stop it, or set "
                              "[daemon] socket to another path")
        finally:
            probe.close()
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(str(p))
    except OSError as exc:
        sock.close()
        raise DaemonError(f"cannot create the control socket {p}: {exc.strerror}") from None
    os.chmod(p, 0o660)
    sock.listen(128)
    return trio.SocketListener(sock)


async def open_ingress(config: Config) -> list[trio.SocketListener]:
    s = config.ingress
    try:
        return await trio.open_tcp_listeners(s.port, host=s.host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DaemonError(f"ingress address {s.host}:{s.port} is already in use; stop what "
                              "listens there or set [ingress] listen in the config") from None
        raise DaemonError(f"cannot listen on {s.host}:{s.port}: {exc.strerror}") from None


async def open_metrics(config: Config) -> list[trio.SocketListener]:
    """The metrics listener; a busy port costs the metrics only, never the serving."""
    m = config.metrics
    if not m.enabled:
        return []
    try:
        return await trio.open_tcp_listeners(m.port, host=m.host)
    except OSError as exc:
        log.error("metrics disabled: cannot listen on %s:%d (%s); set [metrics] listen to "
                  "another address, or enabled = false", m.host, m.port, exc.strerror)
        return []


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.daemon.state_dir)
        self.ingress = Ingress(config.ingress)
        self.autoscaler = Autoscaler(config.autoscaler, self.ingress)
        self.hub = Hub(config, self.store, self.ingress, self.autoscaler)
        self.metrics = MetricsServer(self.hub)
        self.hub.reconcile = CountingWakeup()  # lets the systemd watchdog prove the loop alive
        self.notifier = sdnotify.Notifier.from_environ()  # no-op when not under systemd
        self.watchdog_interval = sdnotify.watchdog_interval()
        self.inherited = sdnotify.inherited_sockets()  # socket activation (paasd.socket)
        self.engine = Engine(config.docker.url)  # the builder's, and the docker runtime's
        self.runtime: ProcessRuntime | DockerRuntime
        if config.daemon.runtime == "docker":
            self.runtime = DockerRuntime(config.docker, config.daemon.state_dir,
                                         self.hub.on_instance, self.hub.revision, self.engine)
        else:
            self.runtime = ProcessRuntime(config.process, config.daemon.state_dir,
                                          self.hub.on_instance, self.hub.revision)
        self.runtime.before_stop = self.ingress.drain_instance  # stop only once drained
        self.hub.log_files = self.runtime.log_files
        self.builder = Builder(config.builder, config.daemon.state_dir, self.hub, self.engine)
        self.api = ControlApi(self.hub, self.reload)
        self.api.builder = self.builder
        if isinstance(self.runtime, DockerRuntime):
            self.api.log_stream = self.runtime.logs
        self._apply_live_settings(config)

    def _apply_live_settings(self, config: Config) -> None:
        if isinstance(self.runtime, DockerRuntime):
            self.runtime.settings = config.docker
        else:
            self.runtime.settings = config.process
        self.builder.settings = config.builder
        self.autoscaler.settings = config.autoscaler
        self.ingress.queue_depth = config.activator.queue_depth
        self.ingress.hold_timeout = self.runtime.settings.start_timeout

    async def reload(self) -> list[str]:
        """Re-read the config file; a bad file raises ConfigError and changes nothing."""
        if self.config.path is None:
            return ["no config file to reload (running on built-in defaults)"]
        new = await trio.to_thread.run_sync(load_config, self.config.path)
        notes = [f"{name} changed: restart paasd to apply it" for name, old_v, new_v in (
            ("[daemon] socket", self.config.daemon.socket, new.daemon.socket),
            ("[daemon] state_dir", self.config.daemon.state_dir, new.daemon.state_dir),
            ("[daemon] runtime", self.config.daemon.runtime, new.daemon.runtime),
            ("[ingress] listen", (self.config.ingress.host, self.config.ingress.port),
             (new.ingress.host, new.ingress.port)),
            ("[metrics]", self.config.metrics, new.metrics),
        ) if old_v != new_v]
        self.config = new
        self._apply_live_settings(new)
        changes = await self.hub.sync_config(new)
        self.builder.sync_sources(new.sources)
        for note in notes:
            log.warning("%s", note)
        log.info("config reloaded from %s: %s", new.path, ", ".join(changes) or "no changes")
        return changes + notes

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        cfg = self.config
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
            adopted = adopt(self.inherited, cfg)
            try:
                await self.hub.load()
                api_listener = adopted.control or await open_unix_listener(cfg.daemon.socket)
                ingress_listeners = adopted.ingress or await open_ingress(cfg)
                metrics_listeners = await open_metrics(cfg)
                async with trio.open_nursery() as root:
                    await root.start(self.hub.run)
                    await root.start(self.runtime.run)
                    await root.start(self.builder.run)
                    self.builder.sync_sources(cfg.sources)
                    await root.start(self.autoscaler.run, self.hub.active)
                    reconcile_scope = trio.CancelScope()

                    async def reconcile(*, task_status: trio.TaskStatus[None]) -> None:
                        with reconcile_scope:
                            await reconciler.run(self.hub, self.runtime, task_status=task_status)

                    await root.start(reconcile)
                    await root.start(self.ingress.run, ingress_listeners)
                    api_scope = trio.CancelScope()

                    async def serve_api(*, task_status: trio.TaskStatus[None]) -> None:
                        with api_scope:
                            async with trio.open_nursery() as api_nursery:
                                await api_nursery.start(trio.serve_listeners, self.api.serve,
                                                        [api_listener])
                                task_status.started()

                    await root.start(serve_api)
                    if metrics_listeners:
                        await root.start(self.metrics.run, metrics_listeners)
                        host, port = metrics_listeners[0].socket.getsockname()[:2]
                        host = f"[{host}]" if ":" in host else host
                        self.hub.metrics_url = f"http://{host}:{port}/metrics"
                    log.info("paasd ready: runtime %s, ingress %s, socket %s",
                             cfg.daemon.runtime, self.hub.ingress_url(), cfg.daemon.socket)
                    self.notifier.ready(summary(self.hub))
                    root.start_soon(supervise, self.notifier, self.watchdog_interval, self.hub)
                    task_status.started()
                    async for signum in sigs:
                        if signum != signal.SIGHUP:
                            break
                        self.notifier.reloading()
                        try:
                            await self.reload()
                        except ConfigError as exc:
                            log.error("config reload rejected; the running config stays:\n%s",
                                      exc)
                        self.notifier.ready(summary(self.hub))
                    log.info("%s received: draining requests (grace %gs)",
                             signal.Signals(signum).name, cfg.daemon.shutdown_grace)
                    self.notifier.stopping("stopping: draining requests, then stopping "
                                           f"{len(self.hub.instances)} instances")
                    await self._shutdown(root, reconcile_scope, api_scope, sigs)
            finally:
                self.store.close()
                if adopted.control is None:  # an inherited socket belongs to paasd.socket
                    Path(cfg.daemon.socket).unlink(missing_ok=True)
        log.info("paasd stopped")

    async def _shutdown(self, root: trio.Nursery, reconcile_scope: trio.CancelScope,
                        api_scope: trio.CancelScope,
                        sigs: AsyncIterator[int]) -> None:
        async with trio.open_nursery() as n:
            async def hurry() -> None:
                async for _ in sigs:  # a second signal: no more waiting
                    log.warning("second signal: stopping now")
                    drain.cancel()
            n.start_soon(hurry)
            with trio.CancelScope() as drain:
                await self.ingress.drain(self.config.daemon.shutdown_grace)
            reconcile_scope.cancel()
            api_scope.cancel()
            with trio.CancelScope(shield=True):
                await self.runtime.stop_all()
            n.cancel_scope.cancel()
        root.cancel_scope.cancel()


def run(config: Config) -> None:
    trio.run(Daemon(config).run)
