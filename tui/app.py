"""`paasctl tui` / `paasd-tui`: watch and steer paasd over its control socket.

The app runs on asyncio (Textual). It talks to the daemon only through
`paasd.client` (sync httpx): the watch stream runs in a thread (`feed.py`)
that appends to a queue the app drains on a timer; one-off calls run in
threads (`asyncio.to_thread`) from workers. A dropped stream shows in the
header and is retried with backoff, re-listing on reconnect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import yaml
from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches

from paasd.client import ApiError, Client, edits, resolve_socket

from .feed import FeedItem, WatchFeed
from .keys import DEFAULT_KEYS, DESCRIPTIONS, KeysError, load_keys
from .messages import OpenRevision, OpenService
from .model import History, Model
from .screens.base import DataScreen, Selection
from .screens.dialogs import ConfirmScreen, HelpScreen, PromptScreen
from .screens.editor import EditorScreen, SaveOutcome
from .screens.events import EventsScreen, Fetched
from .screens.logs import LogScreen
from .screens.overview import OverviewScreen
from .screens.requests import RequestsScreen
from .screens.revision import RevisionScreen
from .screens.service import ServiceScreen
from .widgets.header import Connection, StatusHeader, header_text

T = TypeVar("T")

MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
TICK = 0.2  # seconds between draining the watch queue into the model
DRAIN_BUDGET = 0.05  # seconds of folding events in per tick, at most (then a frame)
SAMPLE = 2.0  # seconds between metric refreshes (revisions list) and chart samples

# actions that work on the selected service (and need a data screen)
SERVICE_ACTIONS = {"logs", "yaml", "edit", "scale", "traffic", "rollback", "delete", "build",
                   "requests"}


def app_bindings(keys: dict[str, str]) -> list[BindingType]:
    def b(action: str, desc: str, show: bool = True) -> Binding:
        return Binding(keys[action], action, desc, show=show, id=action)
    return [
        b("quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True, id="quit-ctrl-c"),
        b("help", "help"),
        b("filter", "filter"),
        b("jump", "jump"),
        b("logs", "logs"),
        b("yaml", "yaml"),
        b("edit", "edit"),
        b("config", "config"),
        b("scale", "scale"),
        b("traffic", "traffic"),
        b("rollback", "rollback"),
        b("delete", "delete"),
        b("build", "build", show=False),
        b("refresh", "re-list", show=False),
        b("events", "events", show=False),
        b("requests", "requests", show=False),
    ]


class PaasdApp(App[None]):
    TITLE = "paasd"
    CSS_PATH = "paasd.tcss"
    BINDINGS: ClassVar[list[BindingType]] = app_bindings(DEFAULT_KEYS)

    def __init__(self, socket: str | None = None, *, keys: dict[str, str] | None = None,
                 connect: bool = True, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.socket = resolve_socket(socket)
        self.keys = keys if keys is not None else load_keys()
        self.connect = connect
        self.clock = clock
        # the screens are given these two at construction: mutated, never rebound
        self.model = Model()
        self.history = History()
        self.connection = Connection()
        self.queue: deque[FeedItem] = deque()
        self.feed: WatchFeed | None = None
        self._shown_version = -1
        self._keymap = self._normalize_keymap(dict(self.keys))  # every binding has an id

    # -- lifecycle -------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(OverviewScreen(self.model, self.history))
        self.call_after_refresh(self.tick)
        self.set_interval(TICK, self.tick)
        if self.connect:
            self.start_feed()
            self.set_interval(SAMPLE, self.sample)

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def start_feed(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        self.feed = WatchFeed(self.socket, self.queue.append)
        self.feed.start()

    def tick(self) -> None:
        """Drain what the watch thread read into the model; re-render if it changed.

        Folding events in is cheap (the model indexes them) and re-rendering is once
        per tick, however many events came (a 10 000-service listing is 20 000+
        lines); still, a tick stops folding after `DRAIN_BUDGET` seconds so keys and
        frames go on between, and asks for another tick straight after the frame."""
        deadline = time.perf_counter() + DRAIN_BUDGET
        queue, model = self.queue, self.model
        done = 0
        while queue:
            kind, payload = queue.popleft()
            if kind == "event":
                if payload.get("kind") == "RuntimeHealth":  # the header shows it
                    self.connection.info = {**self.connection.info,
                                            "runtimeHealth": payload.get("object") or {}}
                model.apply(payload)
            elif kind == "revisions":
                model.replace_revisions(payload)
            elif kind == "connected":
                self.connection = Connection("connected", payload["info"], self.clock())
                model.clear()  # the watch re-sends everything as ADDED
                model.events.clear()
                model.events.extend(payload["events"])
            elif kind == "disconnected":
                self.connection.state = "disconnected"
                self.connection.reason = payload["reason"]
                self.connection.attempt = payload["attempt"]
            done += 1
            if done % 256 == 0 and time.perf_counter() > deadline:
                self.call_after_refresh(self.tick)  # the rest after this frame
                break
        self.render_header()
        if model.version != self._shown_version:
            self._shown_version = model.version
            self.refresh_screen()

    def data_screen(self) -> DataScreen | None:
        """The topmost data screen, under any dialog."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DataScreen):
                return screen
        return None

    def refresh_screen(self) -> None:
        screen = self.data_screen()
        if screen is not None and screen.is_mounted:
            # NoMatches: its widgets are being torn down (the app is leaving) — nothing
            # to show; a screen still in use catches up on the next tick
            with contextlib.suppress(NoMatches):
                screen.refresh_view()

    def render_header(self) -> None:
        text = header_text(self.connection, self.socket, self.model.total_rps(), self.clock())
        screen = self.data_screen()
        if screen is not None:
            for header in screen.query(StatusHeader):
                header.show(text)

    def sample(self) -> None:
        if self.connection.state == "connected":
            self.history.record(self.model)
            self.run_worker(self._fetch_revisions, thread=True, group="refresh",
                            exclusive=True, exit_on_error=False)

    def _fetch_revisions(self) -> None:
        try:
            with Client(self.socket, timeout=5) as client:
                # only the live ones: on a box with 10 000 idle revisions this stays small
                self.queue.append(("revisions", client.revisions(active=True)))
        except Exception:  # the watch thread reports the daemon's state; this is only metrics
            pass

    # -- helpers -----------------------------------------------------------------

    async def call(self, fn: Callable[[Client], T]) -> T:
        """One blocking API call, in a thread."""
        def run() -> T:
            with Client(self.socket, timeout=15) as client:
                return fn(client)
        return await asyncio.to_thread(run)

    def selection(self) -> Selection | None:
        screen = self.screen
        return screen.selection() if isinstance(screen, DataScreen) else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SERVICE_ACTIONS:
            if not isinstance(self.screen, DataScreen) or isinstance(self.screen, EditorScreen):
                return False
            return True if self.selection() is not None else None
        if action in ("filter", "jump", "config"):
            return isinstance(self.screen, DataScreen) and not isinstance(self.screen,
                                                                          EditorScreen)
        return True

    def fail(self, what: str, exc: Exception) -> None:
        self.notify(f"{what}: {exc}", severity="error", timeout=8)

    def open_service(self, namespace: str, name: str) -> None:
        self.push_screen(ServiceScreen(self.model, namespace, name))

    def open_revision(self, namespace: str, service: str, revision: str) -> None:
        self.push_screen(RevisionScreen(self.model, namespace, service, revision,
                                        clock=self.clock))

    def on_open_service(self, message: OpenService) -> None:
        """A screen's drill-down (Enter on a service), posted up to the app."""
        self.open_service(message.ns, message.service)

    def on_open_revision(self, message: OpenRevision) -> None:
        """A screen's drill-down (Enter on a revision), posted up to the app."""
        self.open_revision(message.ns, message.service, message.revision)

    # -- navigation --------------------------------------------------------------

    def action_help(self) -> None:
        shown = {"question_mark": "?", "slash": "/", "colon": ":"}
        lines = [f"{shown.get(self.keys[a], self.keys[a]):>14}  {d}"
                 for a, d in DESCRIPTIONS.items()]
        lines.append(f"{'ctrl+c':>14}  quit")
        lines.append(f"{'ctrl+s':>14}  save (in an editor)")
        self.push_screen(HelpScreen("\n".join(lines)))

    def action_filter(self) -> None:
        screen = self.screen
        if hasattr(screen, "action_filter"):
            screen.action_filter()

    def action_refresh(self) -> None:
        if self.connect:
            self.start_feed()

    @work(exit_on_error=False)
    async def action_jump(self) -> None:
        answer = await self.push_screen_wait(PromptScreen(
            "Jump to", "a service, revision or instance name (or `config`)"))
        if not answer:
            return
        self.jump(answer.strip())

    def jump(self, name: str) -> None:
        if name == "config":
            self.action_config()
            return
        ns, _, bare = name.rpartition("/")
        for k in self.model.service_order:  # sorted already
            if k[1] == bare and ns in ("", k[0]):
                self.open_service(*k)
                return
        for rns, rname in sorted(k for k in self.model.revisions
                                 if k[1] == bare and ns in ("", k[0])):
            rev = self.model.revisions[(rns, rname)]
            svc = rev.get("metadata", {}).get("labels", {}).get(
                "serving.knative.dev/service", "")
            self.open_revision(rns, svc, rname)
            return
        inst = self.model.instances.get(bare)
        if inst is not None:
            self.open_revision(str(inst.get("namespace", "default")),
                               str(inst.get("service")), str(inst.get("revision")))
            return
        self.notify(f"no service, revision or instance named {name!r}", severity="warning")

    # -- views ---------------------------------------------------------------------

    def action_events(self) -> None:
        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen(self._fetch_eventing))

    def _fetch_eventing(self) -> Fetched:
        """Brokers and triggers with their status (called in the events screen's thread)."""
        with Client(self.socket, timeout=5) as client:
            return {plural: client.request("GET", f"/v1/objects/{plural}")["items"]
                    for plural in ("brokers", "triggers")}

    def action_logs(self) -> None:
        sel = self.selection()
        if sel is not None:
            self.push_screen(LogScreen(sel, self.socket))

    def action_requests(self) -> None:
        sel = self.selection()
        if sel is not None:
            self.push_screen(RequestsScreen(sel, self.socket, connect=self.connect))

    async def _exported_yaml(self) -> tuple[Selection, str] | None:
        """(selection, its service as Knative YAML), or None (nothing selected, or failed)."""
        sel = self.selection()
        if sel is None:
            return None
        try:
            doc = await self.call(lambda c: c.export(sel.namespace, sel.service))
        except ApiError as exc:
            self.fail(f"export {sel.service}", exc)
            return None
        return sel, yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)

    @work(exit_on_error=False)
    async def action_yaml(self) -> None:
        exported = await self._exported_yaml()
        if exported is not None:
            sel, text = exported
            self.push_screen(EditorScreen(f"{sel.service} (Knative YAML)", text, "yaml", None))

    @work(exit_on_error=False)
    async def action_edit(self) -> None:
        exported = await self._exported_yaml()
        if exported is None:
            return
        sel, text = exported
        filename = f"{sel.service}.yaml"

        async def save(text: str) -> SaveOutcome:
            try:
                results = await self.call(lambda c: c.apply(text, filename))
            except ApiError as exc:
                return SaveOutcome(False, str(exc), exc.problems)
            return SaveOutcome(True, "; ".join(
                f"{r['name']} {r['outcome']}"
                + (f" (revision {r['revision']})" if r.get("revision") else "")
                for r in results))

        self.push_screen(EditorScreen(f"edit {filename}", text, "yaml", save))

    @work(exit_on_error=False)
    async def action_config(self) -> None:
        try:
            config = await self.call(lambda c: c.config())
        except ApiError as exc:
            self.fail("config", exc)
            return

        async def save(text: str) -> SaveOutcome:
            try:
                result = await self.call(lambda c: c.put_config(text))
            except ApiError as exc:
                return SaveOutcome(False, str(exc), exc.problems)
            changes = result.get("changes") or ["no changes"]
            return SaveOutcome(True, "reloaded: " + "; ".join(map(str, changes)))

        path = config.get("path") or "paasd.toml"
        self.push_screen(EditorScreen(str(path), str(config.get("text", "")), "toml", save))

    # -- actions on a service --------------------------------------------------------

    async def apply_doc(self, doc: dict[str, Any], what: str) -> None:
        try:
            result = await self.call(lambda c: c.apply_document(doc, filename="<paasd-tui>"))
        except ApiError as exc:
            self.fail(what, exc)
            return
        rev = f" (revision {result['revision']})" if result.get("revision") else ""
        self.notify(f"{result['name']} {result['outcome']}{rev}", title=what)

    @work(exit_on_error=False)
    async def action_scale(self) -> None:
        sel = self.selection()
        if sel is None:
            return
        try:
            doc = await self.call(lambda c: c.export(sel.namespace, sel.service))
        except ApiError as exc:
            self.fail(f"scale {sel.service}", exc)
            return
        notes = doc["spec"].get("template", {}).get("metadata", {}).get("annotations", {})
        current = f"{notes.get(MIN_SCALE, '0')} {notes.get(MAX_SCALE, '0')}"
        answer = await self.push_screen_wait(PromptScreen(
            f"Scale bounds of {sel.service}",
            "MIN MAX, e.g. `1 5` (max 0: no limit). Makes a new revision.", current))
        if answer is None:
            return
        try:
            lo, hi = (int(x) for x in answer.replace(",", " ").split())
        except ValueError:
            self.notify(f"scale {answer!r}: give two whole numbers, MIN MAX", severity="error")
            return
        await self.apply_doc(edits.edit_template(doc, scale_min=lo, scale_max=hi),
                             f"scale {sel.service}")

    @work(exit_on_error=False)
    async def action_traffic(self) -> None:
        sel = self.selection()
        if sel is None:
            return
        try:
            doc = await self.call(lambda c: c.export(sel.namespace, sel.service))
        except ApiError as exc:
            self.fail(f"traffic {sel.service}", exc)
            return
        targets = doc["spec"].get("traffic") or [{"latestRevision": True, "percent": 100}]
        current = ",".join(
            f"{edits.LATEST if t.get('latestRevision') else t.get('revisionName')}="
            f"{t.get('percent', 0)}" for t in targets if t.get("percent"))
        tags = ", ".join(f"{t.get('tag')}→{t.get('revisionName') or edits.LATEST}"
                         for t in targets if t.get("tag")) or "none"
        answer = await self.push_screen_wait(PromptScreen(
            f"Traffic of {sel.service}",
            "REV=PERCENT,… (REV: a revision, @latest or a tag), then optional "
            f"tag:REV=TAG and untag:TAG words. Tags now: {tags}", current))
        if answer is None:
            return
        traffic, tag, untag = [], [], []
        for word in answer.split():
            if word.startswith("tag:"):
                tag.append(word[4:])
            elif word.startswith("untag:"):
                untag.append(word[6:])
            else:
                traffic.append(word)
        try:
            new = edits.edit_traffic(doc, traffic, tag, untag)
        except edits.EditError as exc:
            self.fail(f"traffic {sel.service}", exc)
            return
        await self.apply_doc(new, f"traffic {sel.service}")

    @work(exit_on_error=False)
    async def action_rollback(self) -> None:
        sel = self.selection()
        if sel is None:
            return
        target = sel.revision or "the previous ready revision"
        if not await self.push_screen_wait(ConfirmScreen(
                f"Roll back {sel.service}: 100% of traffic to {target}?")):
            return
        try:
            result = await self.call(lambda c: c.rollback(sel.namespace, sel.service,
                                                          sel.revision))
        except ApiError as exc:
            self.fail(f"rollback {sel.service}", exc)
            return
        self.notify(f"{sel.service}: 100% of traffic to {result.get('revision')}",
                    title="rolled back")

    @work(exit_on_error=False)
    async def action_delete(self) -> None:
        sel = self.selection()
        if sel is None:
            return
        if not await self.push_screen_wait(ConfirmScreen(
                f"Delete service {sel.namespace}/{sel.service}, its revisions and "
                "instances?")):
            return
        try:
            await self.call(lambda c: c.delete_service(sel.namespace, sel.service))
        except ApiError as exc:
            self.fail(f"delete {sel.service}", exc)
            return
        while len(self.screen_stack) > 2 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()
        self.notify(f"service {sel.service} deleted")

    @work(exit_on_error=False)
    async def action_build(self) -> None:
        sel = self.selection()
        if sel is None:
            return
        answer = await self.push_screen_wait(PromptScreen(
            f"Build {sel.service}", "a source directory on the daemon's machine (Dockerfile "
            "or a detected stack); the image becomes a new revision", os.getcwd()))
        if not answer:
            return
        source = os.path.abspath(answer)
        try:
            build = await self.call(lambda c: c.build(sel.namespace, sel.service, source))
        except ApiError as exc:
            if exc.status in (404, 405, 409):
                self.notify(f"builds are not available on this daemon: {exc}",
                            severity="warning", timeout=8)
            else:
                self.fail(f"build {sel.service}", exc)
            return
        self.notify(f"build {build.get('id')} queued from {source}; its events show on the "
                    "revision", title=f"build {sel.service}")


def run(socket: str | None = None) -> int:
    try:
        keys = load_keys()
    except KeysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    PaasdApp(socket, keys=keys).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paasd-tui", description="The paasd terminal UI.")
    parser.add_argument("--socket", help="control socket (default: $PAASD_SOCKET, then the "
                        "daemon's default)")
    args = parser.parse_args(argv)
    return run(args.socket)


if __name__ == "__main__":
    sys.exit(main())
