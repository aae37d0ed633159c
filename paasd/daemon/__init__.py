"""The daemon: one trio root nursery that owns every component.

Components are wired here, at construction, each given the collaborators it
talks to (no attribute is assigned after the fact); the runtime comes from
the catalog by the name in the config, and nothing below asks which one it
is. Start order is dependency order (hub → runtime adopts what it finds →
builder → autoscaler → reconciler → ingress → control API) and "ready" is
reported last. Shutdown is the reverse: stop accepting, drain in-flight
requests within the grace period, stop every instance, then cancel the root
scope so nothing outlives the daemon.
"""

from __future__ import annotations

import functools
import gc
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from ..api.prometheus import MetricsServer
from ..api.routes import ControlApi
from ..api.tls import TlsApi
from ..autoscaler.loop import Autoscaler
from ..builder import Builder
from ..config import Config, load_config, parse_config
from ..dataplane import DataPlaneEvent, hostloop
from ..engine import Engine, state_label
from ..errors import ConfigError
from ..eventing.broker import Eventing, exposition
from ..hub import Hub
from ..ingress import Ingress
from ..observability import Observability
from ..reconciler import loop as reconciler
from ..reconciler.wakeup import CountingWakeup
from ..runtime import Catalog, Runtime, RuntimeContext, schemas
from ..runtime.catalog import BUILTIN
from ..spec.keys import RevisionKey
from ..spec.objects import ObjectKey, ObjectKinds
from ..store import Store
from ..systemd import sdnotify
from ..systemd.activation import adopt
from ..systemd.watchdog import supervise
from ..tls import CertStore
from ..tls.domainmapping import DomainMappings
from .kinds import BUILTIN_KINDS
from .listeners import DaemonError, open_ingress, open_metrics, open_tls, open_unix_listener

log = logging.getLogger("paasd")

DATAPLANE_EVENTS = 10_000  # demand and cold starts waiting for the hub; more are dropped

__all__ = ["Daemon", "DaemonError", "run"]


class Daemon:
    def __init__(self, config: Config, catalog: Catalog = BUILTIN,
                 kinds: ObjectKinds = BUILTIN_KINDS) -> None:
        self.config = config
        self.catalog = catalog
        self.schemas = schemas(catalog)
        kind = catalog[config.daemon.runtime]  # the config was validated against the catalog
        state_dir = Path(config.daemon.state_dir)
        self.store = Store(state_dir)
        events_in, events_out = trio.open_memory_channel[DataPlaneEvent](DATAPLANE_EVENTS)
        self.observability = Observability(config.observability, state_dir)
        self.ingress = Ingress(config.ingress, events_in, self.observability)
        self.autoscaler = Autoscaler(config.autoscaler, self.ingress, self._usage)
        self.wakeup = CountingWakeup()  # lets the systemd watchdog prove the loop alive
        self.hub = Hub(config, self.store, self.ingress, self.autoscaler, self.wakeup,
                       self.schemas, events_out, kinds, on_object=self._object_changed)
        self.engine = Engine(config.engine_url)  # the builder's and the runtimes'
        self.runtime: Runtime = kind.create(RuntimeContext(
            settings=config.runtime_settings, state_dir=state_dir,
            owner=state_label(str(state_dir)), engine=self.engine,
            on_instance=self.hub.on_instance, lookup=self.hub.revision,
            drain=self.ingress.drain_instance, on_health=self.hub.on_runtime_health,
            objects=self._object_body))
        # [tls]: the CA and per-host certificates the HTTPS listener serves (paasd.tls)
        self.certs = CertStore(config.tls, state_dir, self.ingress.serves_https) \
            if config.tls.enabled else None
        self.domains = DomainMappings(self.hub, self.ingress.update_aliases, self.certs)
        self.builder = Builder(config.builder, config.daemon.state_dir, self.hub, self.engine,
                               kind.name, kind.schema.runs_images)
        self.api = ControlApi(self.hub, self.runtime, self.builder, self.reload,
                              self._parse_config, TlsApi(self.certs).routes(),
                              observability=self.observability)
        self.eventing = Eventing(self.hub, self.ingress, state_dir)
        certs = self.certs
        self.metrics = MetricsServer(
            self.hub, [lambda: exposition(self.eventing)] + (
                [lambda: "".join(line + "\n" for line in certs.metrics())] if certs else []),
            requests=self.observability.metrics)
        self.notifier = sdnotify.Notifier.from_environ()  # no-op when not under systemd
        self.watchdog_interval = sdnotify.watchdog_interval()
        self.inherited = sdnotify.inherited_sockets()  # socket activation (paasd.socket)
        self._apply_live_settings(config)

    def _parse_config(self, text: str, source: str) -> Config:
        return parse_config(text, source, runtimes=self.schemas)

    def _object_changed(self, key: ObjectKey) -> None:
        """The hub's word that an object changed: the runtime refreshes what it made of a
        Secret or ConfigMap (mounted files, a mirrored copy)."""
        if key.kind in ("Secret", "ConfigMap"):
            self.runtime.objects_changed(key.kind, key.namespace, key.name)

    async def _usage(self, key: RevisionKey) -> tuple[float, float, int] | None:
        """The HPA class's reading of a revision's instances, from the runtime."""
        return await self.runtime.usage(key)

    def _object_body(self, kind: str, namespace: str, name: str) -> Any:
        """What the runtime resolves Secrets and ConfigMaps against: the hub's objects."""
        obj = self.hub.objects.items.get(ObjectKey(kind, namespace, name))
        return obj.body if obj is not None else None

    def _apply_live_settings(self, config: Config) -> None:
        self.runtime.reconfigure(config.runtime_settings)
        self.builder.reconfigure(config.builder)
        self.autoscaler.reconfigure(config.autoscaler)
        self.ingress.configure(queue_depth=config.activator.queue_depth,
                               hold_timeout=self.runtime.hold_timeout)
        self.observability.configure(config.observability)
        self.ingress.observe_changed()
        self.wakeup.ring()  # new settings (a global min-scale...) may change every count

    async def reload(self) -> list[str]:
        """Re-read the config file; a bad file raises ConfigError and changes nothing."""
        if self.config.path is None:
            return ["no config file to reload (running on built-in defaults)"]
        new = await trio.to_thread.run_sync(load_config, self.config.path, self.schemas)
        notes = [f"{name} changed: restart paasd to apply it" for name, old_v, new_v in (
            ("[daemon] socket", self.config.daemon.socket, new.daemon.socket),
            ("[daemon] state_dir", self.config.daemon.state_dir, new.daemon.state_dir),
            ("[daemon] runtime", self.config.daemon.runtime, new.daemon.runtime),
            ("[ingress] listen", (self.config.ingress.host, self.config.ingress.port),
             (new.ingress.host, new.ingress.port)),
            ("[docker] url", self.config.engine_url, new.engine_url),
            ("[metrics]", self.config.metrics, new.metrics),
            ("[tls] enabled", self.config.tls.enabled, new.tls.enabled),
            ("[tls] listen", (self.config.tls.host, self.config.tls.port),
             (new.tls.host, new.tls.port)),
        ) if old_v != new_v]
        if self.certs is not None:  # the new certificates load, or nothing changes
            try:
                await trio.to_thread.run_sync(self.certs.reconfigure, new.tls)
            except (OSError, ValueError) as exc:
                raise ConfigError([f"{new.path}: [tls]: a certificate does not load: {exc}; "
                                   "the running certificates stay"]) from None
        if new.daemon.runtime != self.config.daemon.runtime:
            # the running runtime keeps its own settings until the restart
            new = _with_runtime_settings(new, self.config)
        self.config = new
        self._apply_live_settings(new)
        changes = await self.hub.sync_config(new)
        self.domains.reconcile()  # certificates by secret name may have come or gone
        self.builder.sync_sources(new.sources)
        for note in notes:
            log.warning("%s", note)
        log.info("config reloaded from %s: %s", new.path, ", ".join(changes) or "no changes")
        return changes + notes

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        cfg = self.config
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
            adopted = adopt(self.inherited, cfg.daemon.socket,
                            cfg.ingress.url.removeprefix("http://"))
            try:
                tls_listeners = await open_tls(cfg) if self.certs is not None else []
                if self.certs is not None:
                    try:
                        await trio.to_thread.run_sync(self.certs.open)
                    except (OSError, ValueError) as exc:
                        raise DaemonError(f"[tls]: cannot set up the certificate authority "
                                          f"in {self.certs.dir}: {exc}") from None
                    self.hub.set_https_port(tls_listeners[0].socket.getsockname()[1])
                await self.hub.load()
                api_listener = adopted.control or await open_unix_listener(cfg.daemon.socket)
                ingress_listeners = adopted.ingress or await open_ingress(cfg)
                metrics_listeners = await open_metrics(cfg)
                async with trio.open_nursery() as root:
                    await root.start(self.hub.run)
                    await root.start(self.domains.run)  # DomainMappings: claims, hosts
                    await root.start(self.runtime.run)
                    await root.start(self.builder.run)
                    self.builder.sync_sources(cfg.sources)
                    await root.start(self.autoscaler.run, self.hub.active, self.hub.scaled)
                    reconcile_scope = trio.CancelScope()

                    async def reconcile(*, task_status: trio.TaskStatus[None]) -> None:
                        with reconcile_scope:
                            await reconciler.run(
                                self.hub.desired, self.runtime, self.hub.revision,
                                self.wakeup, lambda: self.config.reconciler.resync_period,
                                self.hub.desired_of, task_status=task_status)

                    await root.start(reconcile)
                    await root.start(self.observability.run)
                    await root.start(functools.partial(
                        self.ingress.run, tls_listeners=tls_listeners,
                        tls_context=self.certs.listener_context if self.certs else None,
                        handshake_timeout=cfg.tls.handshake_timeout), ingress_listeners)
                    if self.certs is not None:
                        await root.start(self.certs.run)
                    await root.start(self.eventing.run)
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
                    if self.certs is not None:
                        log.info("HTTPS on %s:%d; its CA certificate: %s (`paasctl tls ca`)",
                                 cfg.tls.host, self.hub.https_port,
                                 self.certs.dir / "ca.crt")
                    self.notifier.ready(self.hub.summary())
                    root.start_soon(supervise, self.notifier, self.watchdog_interval,
                                    self.wakeup, self.hub.summary, self.hub.watch)
                    task_status.started()
                    _settle_garbage_collector()
                    async for signum in sigs:
                        if signum != signal.SIGHUP:
                            break
                        self.notifier.reloading()
                        try:
                            await self.reload()
                        except ConfigError as exc:
                            log.error("config reload rejected; the running config stays:\n%s",
                                      exc)
                        self.notifier.ready(self.hub.summary())
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


def _settle_garbage_collector() -> None:
    """Once started: what exists now lives as long as the daemon, so the collector stops
    scanning it (`gc.freeze`), and young collections run less often — the data plane
    allocates per request, and each collection is time taken from requests."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _with_runtime_settings(new: Config, running: Config) -> Config:
    """`new`, but naming the running runtime (a runtime change needs a restart)."""
    import dataclasses

    return dataclasses.replace(new, daemon=dataclasses.replace(
        new.daemon, runtime=running.daemon.runtime))


def run(config: Config, catalog: Catalog = BUILTIN) -> None:
    """The daemon, in trio, as a guest on the data plane's asyncio host loop (one thread)."""
    hostloop.run(Daemon(config, catalog).run)
