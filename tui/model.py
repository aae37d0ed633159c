"""What the TUI knows about the daemon: a pure model fed by the watch stream.

No I/O and no Textual here: `Model.apply(event)` folds one watch event in,
`Model.service_rows()` and friends shape it for the tables, and `History`
keeps the last minutes of requests/s and instance counts per service for the
sparklines. Time is always an argument, so tests are deterministic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

SERVICE_LABEL = "serving.knative.dev/service"
EVENTS_KEPT = 500
HISTORY_SAMPLES = 150  # one every 2 s: the last 5 minutes


def key(obj: Obj) -> tuple[str, str]:
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


@dataclass
class History:
    """Per-service samples of (requests/s, ready instances), bounded."""

    samples: dict[tuple[str, str], deque[tuple[float, int]]] = field(default_factory=dict)

    def record(self, model: Model) -> None:
        for k in model.services:
            rps, ready = model.service_totals(k)[:2]
            series = self.samples.setdefault(k, deque(maxlen=HISTORY_SAMPLES))
            series.append((rps, ready))
        for gone in set(self.samples) - set(model.services):
            del self.samples[gone]

    def rps(self, k: tuple[str, str]) -> list[float]:
        return [s[0] for s in self.samples.get(k, ())]

    def instances(self, k: tuple[str, str]) -> list[float]:
        return [float(s[1]) for s in self.samples.get(k, ())]


@dataclass
class Model:
    services: dict[tuple[str, str], Obj] = field(default_factory=dict)
    revisions: dict[tuple[str, str], Obj] = field(default_factory=dict)
    instances: dict[str, Obj] = field(default_factory=dict)
    events: deque[Obj] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    version: int = 0  # bumped on every change: views re-render only when it moved

    def clear(self) -> None:
        self.services.clear()
        self.revisions.clear()
        self.instances.clear()
        self.version += 1

    def apply(self, event: Obj) -> None:
        """Fold one watch event (ADDED/MODIFIED/DELETED/EVENT) into the model."""
        kind, typ, obj = event.get("kind"), event.get("type"), event.get("object") or {}
        self.version += 1
        if typ == "EVENT" or kind == "Event":
            self.events.append(obj)
            return
        if kind == "Instance":
            ident = obj.get("id", "")
            if typ == "DELETED":
                self.instances.pop(ident, None)
            else:
                self.instances[ident] = obj
            return
        table = {"Service": self.services, "Revision": self.revisions}.get(str(kind))
        if table is None:
            return
        if typ == "DELETED":
            table.pop(key(obj), None)
        else:
            table[key(obj)] = obj

    def replace_revisions(self, items: list[Obj]) -> None:
        """The periodic refresh of live metrics (they move without watch events).

        Only revisions the watch already told us about are updated: a list read
        just before a DELETED event must not bring the revision back."""
        changed = False
        for r in items:
            k = key(r)
            if k in self.revisions and self.revisions[k] != r:
                self.revisions[k] = r
                changed = True
        if changed:
            self.version += 1

    # -- views -----------------------------------------------------------------

    def revisions_of(self, k: tuple[str, str]) -> list[Obj]:
        ns, name = k
        revs = [r for r in self.revisions.values()
                if key(r)[0] == ns
                and r.get("metadata", {}).get("labels", {}).get(SERVICE_LABEL) == name]
        return sorted(revs, key=lambda r: key(r)[1], reverse=True)

    def instances_of(self, namespace: str, revision: str) -> list[Obj]:
        return sorted((i for i in self.instances.values()
                       if i.get("revision") == revision
                       and i.get("namespace", namespace) == namespace),
                      key=lambda i: str(i.get("id")))

    def events_of(self, obj_ref: str, namespace: str | None = None) -> list[Obj]:
        return [e for e in self.events if e.get("object") == obj_ref
                and (namespace is None or e.get("namespace", namespace) == namespace)]

    def service_totals(self, k: tuple[str, str]) -> tuple[float, int, int, int, float, bool]:
        """(requests/s, ready, desired, in-flight, worst p99, any panic) over its revisions."""
        rps, ready, desired, inflight, p99, panic = 0.0, 0, 0, 0, 0.0, False
        for r in self.revisions_of(k):
            m = r.get("status", {}).get("metrics") or {}
            rps += float(m.get("requestsPerSecond") or 0)
            ready += int(m.get("readyInstances") or 0)
            desired += int(m.get("desiredInstances") or 0)
            inflight += int(m.get("inFlight") or 0)
            p99 = max(p99, float(m.get("latencyP99Seconds") or 0))
            panic = panic or bool(m.get("panic"))
        return rps, ready, desired, inflight, p99, panic

    def total_rps(self) -> float:
        return sum(float((r.get("status", {}).get("metrics") or {}).get("requestsPerSecond")
                         or 0) for r in self.revisions.values())

    def service_rows(self, text_filter: str = "") -> list[tuple[tuple[str, str], list[str]]]:
        rows = []
        for k in sorted(self.services):
            svc = self.services[k]
            st = svc.get("status", {})
            if text_filter and text_filter.lower() not in "/".join(k).lower():
                continue
            ready = condition(svc)
            rps, r_ready, r_desired, inflight, p99, panic = self.service_totals(k)
            traffic = " ".join(
                f"{t.get('revisionName', '?')}:{t.get('percent', 0)}%"
                + (f"#{t['tag']}" if t.get("tag") else "")
                for t in st.get("traffic", []) or [] if t.get("percent") or t.get("tag"))
            name = k[1] if k[0] == "default" else f"{k[0]}/{k[1]}"
            url = str(st.get("url") or "").removeprefix("http://")
            rows.append((k, [name, url,
                             ready.get("status", "Unknown")
                             + (f" ({ready['reason']})" if ready.get("reason") else ""),
                             str(st.get("latestCreatedRevisionName") or ""), traffic or "-",
                             f"{r_ready}/{r_desired}", rate(rps), str(inflight),
                             latency(p99), "yes" if panic else "-"]))
        return rows

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
