"""What the TUI knows about the daemon: a pure model fed by the watch stream.

No I/O and no Textual here: `Model.apply(event)` folds one watch event in,
`Model.service_row()` and friends shape it for the tables, and `History`
keeps the last minutes of requests/s and instance counts per service for the
sparklines. Time is always an argument, so tests are deterministic.

Everything costs what changed, never what exists (10 000 services on one box,
issue 17): revisions are indexed by service and instances by revision, the
service keys are kept sorted as they come and go, the services with live
figures (requests, instances, a scale decision) are a set of their own, and
every change stamps the service it touches with the model's version, so a
view asks `changed_since(version)` for what to redraw instead of redrawing
everything.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name) of a service or a revision

SERVICE_LABEL = "serving.knative.dev/service"
EVENTS_KEPT = 500
HISTORY_SAMPLES = 150  # one every 2 s: the last 5 minutes
LIVE_FIGURES = ("requestsPerSecond", "readyInstances", "desiredInstances", "inFlight",
                "latencyP99Seconds", "panic")


def key(obj: Obj) -> Key:
    meta = obj.get("metadata", {})
    return meta.get("namespace", "default"), meta.get("name", "")


def condition(obj: Obj, kind: str = "Ready") -> Obj:
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c.get("type") == kind:
            return dict(c)
    return {"status": "Unknown"}


def age(stamp: str | None, now: float) -> str:
    """kubectl-style age: 45s, 3m, 2h, 5d."""
    if not stamp:
        return ""
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return ""
    return duration(max(0.0, now - then))


def duration(seconds: float) -> str:
    secs = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def rate(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def latency(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"


def live(revision: Obj) -> bool:
    """Whether a revision has figures to add up (most of 10 000 idle ones have none)."""
    m = revision.get("status", {}).get("metrics") or {}
    return any(m.get(f) for f in LIVE_FIGURES)


def matches(k: Key, text_filter: str) -> bool:
    """The overview's `/` filter: a piece of NAMESPACE/NAME, any case."""
    return not text_filter or text_filter.lower() in f"{k[0]}/{k[1]}".lower()


@dataclass
class History:
    """Per-service samples of (requests/s, ready instances), bounded.

    Sparse: a sample is kept only for the services that had live figures when it
    was taken (a handful, on a box of 10 000 mostly idle ones); a service's series
    is the last `HISTORY_SAMPLES` ticks with zeros where it had nothing."""

    samples: dict[Key, deque[tuple[int, float, int]]] = field(default_factory=dict)
    ticks: int = 0
    _services: dict[Key, Obj] = field(default_factory=dict, repr=False)

    def record(self, model: Model) -> None:
        self.ticks += 1
        self._services = model.services  # the model's own: a deleted service has no series
        for k in model.live_services():
            if k in model.services:
                rps, ready = model.service_totals(k)[:2]
                series = self.samples.setdefault(k, deque(maxlen=HISTORY_SAMPLES))
                series.append((self.ticks, rps, ready))
        oldest = self.ticks - HISTORY_SAMPLES
        for gone in [k for k, s in self.samples.items()
                     if k not in model.services or s[-1][0] <= oldest]:
            del self.samples[gone]

    def _series(self, k: Key, index: int) -> list[float]:
        if k not in self._services:
            return []
        n = min(self.ticks, HISTORY_SAMPLES)
        first = self.ticks - n + 1
        out = [0.0] * n
        for sample in self.samples.get(k, ()):
            if sample[0] >= first:
                out[sample[0] - first] = float(sample[index])
        return out

    def rps(self, k: Key) -> list[float]:
        return self._series(k, 1)

    def instances(self, k: Key) -> list[float]:
        return self._series(k, 2)


def _index() -> dict[str, None]:
    """An insertion-ordered set of names."""
    return {}


@dataclass
class Model:
    """The daemon's objects, indexed so each change and each view of one service
    costs that service, whatever the number of services.

    `services`, `revisions` and `instances` are the objects as the API sent them;
    change them only through `apply`/`replace_revisions` (the indexes follow)."""

    services: dict[Key, Obj] = field(default_factory=dict)
    revisions: dict[Key, Obj] = field(default_factory=dict)
    instances: dict[str, Obj] = field(default_factory=dict)
    events: deque[Obj] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    version: int = 0  # bumped on every change: views re-render only when it moved
    epoch: int = 0  # bumped by clear() (a re-list): views rebuild from nothing
    service_order: list[Key] = field(default_factory=list)  # sorted; read, never change
    _revisions_of: dict[Key, dict[str, None]] = field(default_factory=dict, repr=False)
    _service_of: dict[Key, Key] = field(default_factory=dict, repr=False)
    _instances_of: dict[Key, dict[str, None]] = field(default_factory=dict, repr=False)
    _revision_of: dict[str, Key] = field(default_factory=dict, repr=False)
    _live: dict[Key, None] = field(default_factory=dict, repr=False)  # revisions
    _touched: dict[Key, int] = field(default_factory=dict, repr=False)  # oldest first

    def clear(self) -> None:
        self.services.clear()
        self.revisions.clear()
        self.instances.clear()
        self.service_order.clear()
        for index in (self._revisions_of, self._service_of, self._instances_of,
                      self._revision_of, self._live, self._touched):
            index.clear()
        self.version += 1
        self.epoch += 1

    def _touch(self, k: Key | None) -> None:
        """`k` (a service) changed at this version."""
        if k is not None:
            self._touched.pop(k, None)
            self._touched[k] = self.version

    def changed_since(self, version: int) -> list[Key]:
        """The services (present or deleted) that changed after `version`, newest
        first: what changed, not what exists. Since the last clear() only (see epoch)."""
        out = []
        for k, stamp in reversed(self._touched.items()):
            if stamp <= version:
                break
            out.append(k)
        return out

    def apply(self, event: Obj) -> None:
        """Fold one watch event (ADDED/MODIFIED/DELETED/EVENT) into the model."""
        kind, typ, obj = event.get("kind"), event.get("type"), event.get("object") or {}
        self.version += 1
        if typ == "EVENT" or kind == "Event":
            self.events.append(obj)
        elif kind == "Instance":
            self._apply_instance(str(typ), obj)
        elif kind == "Revision":
            self._apply_revision(str(typ), obj)
        elif kind == "Service":
            k = key(obj)
            if typ == "DELETED":
                if self.services.pop(k, None) is not None:
                    del self.service_order[bisect_left(self.service_order, k)]
            else:
                if k not in self.services:
                    insort(self.service_order, k)
                self.services[k] = obj
            self._touch(k)

    def _apply_revision(self, typ: str, obj: Obj) -> None:
        rk = key(obj)
        if typ == "DELETED":  # the object may carry only its name: the index knows the rest
            self.revisions.pop(rk, None)
            self._live.pop(rk, None)
            self._link(rk, None)
            return
        self._link(rk, self._service_label(rk, obj))
        self._set_revision(rk, obj)

    @staticmethod
    def _service_label(rk: Key, obj: Obj) -> Key | None:
        name = obj.get("metadata", {}).get("labels", {}).get(SERVICE_LABEL)
        return (rk[0], name) if name else None

    def _link(self, rk: Key, service: Key | None) -> None:
        """Index revision `rk` under `service` (None: under none); the service it
        leaves has changed."""
        before = self._service_of.get(rk)
        if before == service:
            return
        if before is not None:
            names = self._revisions_of.get(before, {})
            names.pop(rk[1], None)
            if not names:
                self._revisions_of.pop(before, None)
            del self._service_of[rk]
            self._touch(before)
        if service is not None:
            self._revisions_of.setdefault(service, _index())[rk[1]] = None
            self._service_of[rk] = service

    def _set_revision(self, rk: Key, obj: Obj) -> None:
        self.revisions[rk] = obj
        if live(obj):
            self._live[rk] = None
        else:
            self._live.pop(rk, None)
        self._touch(self._service_of.get(rk))

    def _apply_instance(self, typ: str, obj: Obj) -> None:
        ident = str(obj.get("id", ""))
        before = self._revision_of.pop(ident, None)
        if before is not None:
            ids = self._instances_of.get(before, {})
            ids.pop(ident, None)
            if not ids:
                self._instances_of.pop(before, None)
            self._touch(self._service_of.get(before))
        if typ == "DELETED":
            self.instances.pop(ident, None)
            return
        self.instances[ident] = obj
        rk = (str(obj.get("namespace") or "default"), str(obj.get("revision", "")))
        self._instances_of.setdefault(rk, _index())[ident] = None
        self._revision_of[ident] = rk
        self._touch(self._service_of.get(rk))

    def replace_revisions(self, items: list[Obj]) -> None:
        """The periodic refresh of live metrics (they move without watch events).

        Only revisions the watch already told us about are updated: a list read
        just before a DELETED event must not bring the revision back."""
        changed = False
        for r in items:
            k = key(r)
            if k in self.revisions and self.revisions[k] != r:
                if not changed:
                    self.version += 1
                    changed = True
                self._set_revision(k, r)

    # -- views -----------------------------------------------------------------

    def _revisions_unsorted(self, k: Key) -> Iterable[Obj]:
        ns = k[0]
        return (self.revisions[(ns, name)] for name in self._revisions_of.get(k, ()))

    def revisions_of(self, k: Key) -> list[Obj]:
        return sorted(self._revisions_unsorted(k), key=lambda r: key(r)[1], reverse=True)

    def instances_of(self, namespace: str, revision: str) -> list[Obj]:
        return [self.instances[i] for i in sorted(
            self._instances_of.get((namespace, revision), ()))]

    def events_of(self, obj_ref: str, namespace: str | None = None) -> list[Obj]:
        return [e for e in self.events if e.get("object") == obj_ref
                and (namespace is None or e.get("namespace", namespace) == namespace)]

    def live_services(self) -> set[Key]:
        """The services with a revision that has live figures."""
        return {s for rk in self._live if (s := self._service_of.get(rk)) is not None}

    def service_totals(self, k: Key) -> tuple[float, int, int, int, float, bool]:
        """(requests/s, ready, desired, in-flight, worst p99, any panic) over its revisions."""
        rps, ready, desired, inflight, p99, panic = 0.0, 0, 0, 0, 0.0, False
        for r in self._revisions_unsorted(k):
            m = r.get("status", {}).get("metrics") or {}
            rps += float(m.get("requestsPerSecond") or 0)
            ready += int(m.get("readyInstances") or 0)
            desired += int(m.get("desiredInstances") or 0)
            inflight += int(m.get("inFlight") or 0)
            p99 = max(p99, float(m.get("latencyP99Seconds") or 0))
            panic = panic or bool(m.get("panic"))
        return rps, ready, desired, inflight, p99, panic

    def total_rps(self) -> float:
        return sum(float((self.revisions[k].get("status", {}).get("metrics") or {}).get(
            "requestsPerSecond") or 0) for k in self._live)

    def service_row(self, k: Key) -> list[str]:
        """The overview's cells for one service."""
        svc = self.services[k]
        st = svc.get("status", {})
        ready = condition(svc)
        rps, r_ready, r_desired, inflight, p99, panic = self.service_totals(k)
        traffic = " ".join(
            f"{t.get('revisionName', '?')}:{t.get('percent', 0)}%"
            + (f"#{t['tag']}" if t.get("tag") else "")
            for t in st.get("traffic", []) or [] if t.get("percent") or t.get("tag"))
        name = k[1] if k[0] == "default" else f"{k[0]}/{k[1]}"
        url = str(st.get("url") or "").removeprefix("http://")
        return [name, url,
                ready.get("status", "Unknown")
                + (f" ({ready['reason']})" if ready.get("reason") else ""),
                str(st.get("latestCreatedRevisionName") or ""), traffic or "-",
                f"{r_ready}/{r_desired}", rate(rps), str(inflight),
                latency(p99), "yes" if panic else "-"]

    def service_rows(self, text_filter: str = "") -> list[tuple[Key, list[str]]]:
        """Every service's row, sorted (the overview shows a page of them; see
        `service_order` and `service_row`)."""
        return [(k, self.service_row(k)) for k in self.service_order
                if matches(k, text_filter)]

    def revision_rows(self, k: tuple[str, str]) -> list[tuple[str, list[str]]]:
        rows = []
        for r in self.revisions_of(k):
            st = r.get("status", {})
            m = st.get("metrics") or {}
            ready = condition(r)
            rows.append((key(r)[1], [
                key(r)[1], f"{st.get('trafficPercent', 0)}%", ",".join(st.get("tags") or []),
                f"{m.get('readyInstances', st.get('actualReplicas', 0))}/"
                f"{m.get('desiredInstances', st.get('desiredReplicas', 0))}",
                rate(float(m.get("requestsPerSecond") or 0)), str(m.get("inFlight") or 0),
                latency(m.get("latencyP99Seconds")), ready.get("status", "Unknown"),
                str(ready.get("reason") or m.get("scaleReason") or ""),
                str(ready.get("message") or "")]))
        return rows

    def instance_rows(self, namespace: str, revision: str, now: float
                      ) -> list[tuple[str, list[str]]]:
        rows = []
        for i in self.instances_of(namespace, revision):
            rows.append((str(i.get("id")), [
                str(i.get("id")), str(i.get("phase", "")), str(i.get("address") or ""),
                "yes" if i.get("phase") == "ready" else "no", str(i.get("inFlight", "-")),
                str(i.get("restarts", 0)), age(i.get("startedAt"), now),
                str(i.get("message") or "")]))
        return rows
