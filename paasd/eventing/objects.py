"""Knative Eventing documents ⇄ typed values: Broker, Trigger, PingSource.

Pure, like `spec/knative.py` for Services: a located document in, a frozen value
or an `InvalidSpec` naming file, line and field out. Knative fields paasd does
not implement are refused by name, never dropped. What is stored is the
canonical document (`to_json` = the spec as exported), so a stored object is
validated again by the same parser at start.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from croniter import croniter

from ..errors import InvalidSpec
from ..spec.fields import Acceptance
from ..spec.knative import (
    DNS1123,
    _Reader,
    check_dns1035,
    service_from_document,
    service_to_document,
)
from ..spec.model import DEFAULT_NAMESPACE, ServiceSpec
from ..spec.objects import ObjectKey, ObjectKind, kinds_by_version
from ..spec.yamlpos import Located

EVENTING = "eventing.knative.dev/v1"
SOURCES = "sources.knative.dev/v1"
SERVING = "serving.knative.dev/v1"
META_FIELDS = ("name", "namespace", "labels", "annotations", "generateName", "uid",
               "resourceVersion", "generation", "creationTimestamp")
_ISO_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
MAX_DELAY = 24 * 3600.0  # a back-off longer than a day is a mistake, not a plan


def iso_duration(text: str) -> float:
    """Seconds of an ISO-8601 duration as Knative's delivery fields take it ("PT0.5S",
    "PT1M", "P1DT2H"); ValueError naming the form otherwise."""
    m = _ISO_DURATION.match(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration; use a form like "
                         '"PT0.5S", "PT10S" or "PT1M"')
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


# -- values --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    kind: str  # "Service" or "Broker"
    name: str
    api_version: str


@dataclass(frozen=True)
class Destination:
    """A sink: a ref to a Service or Broker of the same namespace, a URI, or a ref plus a
    path appended to its address."""

    ref: Ref | None = None
    uri: str | None = None


@dataclass(frozen=True)
class Delivery:
    retry: int | None = None
    backoff_policy: str | None = None  # "linear" | "exponential"
    backoff_delay: str | None = None  # ISO-8601, as written
    dead_letter_sink: Destination | None = None
    timeout: str | None = None
    retry_after_max: str | None = None

    def seconds(self, what: str | None) -> float | None:
        return iso_duration(what) if what is not None else None


@dataclass(frozen=True)
class Meta:
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Broker:
    meta: Meta = field(default_factory=Meta)
    delivery: Delivery | None = None


@dataclass(frozen=True)
class Trigger:
    broker: str
    subscriber: Destination
    filter: tuple[tuple[str, str], ...] = ()
    delivery: Delivery | None = None
    meta: Meta = field(default_factory=Meta)

    def matches(self, attributes: dict[str, Any]) -> bool:
        """Knative's `filter.attributes`: every listed attribute equal (an empty value
        matches any value present); no filter matches everything."""
        for key, want in self.filter:
            have = attributes.get(key)
            if have is None or (want != "" and str(have) != want):
                return False
        return True


@dataclass(frozen=True)
class PingSource:
    schedule: str
    sink: Destination
    timezone: str | None = None
    content_type: str | None = None
    data: str | None = None
    data_base64: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()
    meta: Meta = field(default_factory=Meta)

    def payload(self) -> bytes:
        if self.data_base64 is not None:
            return base64.b64decode(self.data_base64)
        return (self.data or "").encode()


@dataclass(frozen=True)
class ContainerSource:
    """An app that emits events: its container runs as the Service `service` (named
    NAME-deployment, as Knative names the Deployment), given K_SINK and
    K_CE_OVERRIDES, never scaled to zero."""

    service: ServiceSpec
    sink: Destination
    extensions: tuple[tuple[str, str], ...] = ()
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class SinkBinding:
    """K_SINK (and K_CE_OVERRIDES) injected into a Service's container: the Service's
    template gets them, a new revision, as Knative's binding webhook does to a ksvc."""

    subject: str  # a Service of the binding's namespace
    sink: Destination
    extensions: tuple[tuple[str, str], ...] = ()
    meta: Meta = field(default_factory=Meta)


def deployment_name(source: str) -> str:
    return f"{source}-deployment"


# -- the parser --------------------------------------------------------------------------


class _Doc:
    """One document being read: its reader, namespace and name."""

    def __init__(self, doc: Located, kind: str, api_versions: tuple[str, ...],
                 spec_fields: tuple[str, ...]) -> None:
        self.r = r = _Reader(doc, Acceptance())
        top = doc.value
        if not isinstance(top, dict):
            raise r.fail("", f"a {kind} must be a mapping")
        if top.get("kind") != kind or top.get("apiVersion") not in api_versions:
            raise InvalidSpec(f"{doc.where('kind')}: not a {kind} (apiVersion "
                              f"{top.get('apiVersion')!r}, kind {top.get('kind')!r}); expected "
                              f"apiVersion {' or '.join(api_versions)} with kind {kind}")
        r.mapping(top, "", ("apiVersion", "kind", "metadata", "spec", "status"))
        meta = r.mapping(top.get("metadata"), "metadata", META_FIELDS)
        if "name" not in meta:
            raise r.fail("metadata", f"metadata.name is required: give the {kind} a name")
        self.name = r.string(meta["name"], "metadata.name")
        check_dns1035(self.name, "metadata.name", r.fail)
        self.namespace = r.string(meta.get("namespace", DEFAULT_NAMESPACE),
                                  "metadata.namespace")
        if len(self.namespace) > 63 or not DNS1123.match(self.namespace):
            raise r.fail("metadata.namespace", f"{self.namespace!r} is not a valid namespace "
                                               "(lowercase letters, digits, '-')")
        self.meta = Meta(r.string_map(meta.get("labels"), "metadata.labels"),
                         r.string_map(meta.get("annotations"), "metadata.annotations"))
        self.spec = r.mapping(top.get("spec"), "spec", spec_fields)

    def fail(self, path: str, message: str) -> InvalidSpec:
        return self.r.fail(path, message)

    def destination(self, value: Any, path: str) -> Destination:
        r = self.r
        d = r.mapping(value, path, ("ref", "uri", "CACerts", "audience"))
        for unsupported in ("CACerts", "audience"):
            if unsupported in d:
                raise r.fail(f"{path}.{unsupported}", f'field "{unsupported}" is valid in '
                             "Knative but paasd sends events over plain HTTP on loopback; "
                             "remove it")
        if not d:
            raise r.fail(path, "give a ref (to a Service or Broker) or a uri")
        ref = None
        if "ref" in d:
            rd = r.mapping(d["ref"], f"{path}.ref", ("apiVersion", "kind", "name", "namespace"))
            kind = r.string(rd.get("kind"), f"{path}.ref.kind")
            api = r.string(rd.get("apiVersion"), f"{path}.ref.apiVersion")
            allowed = {"Service": SERVING, "Broker": EVENTING}
            if allowed.get(kind) != api:
                raise r.fail(f"{path}.ref", f"a sink ref is a Service ({SERVING}) or a Broker "
                                            f"({EVENTING}), got {kind} ({api})")
            if "name" not in rd:
                raise r.fail(f"{path}.ref", f"{path}.ref.name is required")
            name = r.string(rd["name"], f"{path}.ref.name")
            check_dns1035(name, f"{path}.ref.name", r.fail)
            ns = rd.get("namespace")
            if ns is not None and r.string(ns, f"{path}.ref.namespace") != self.namespace:
                raise r.fail(f"{path}.ref.namespace",
                             f"a sink in another namespace ({ns!r}) is not allowed: it must be "
                             f"in the {self.kind_word()}'s namespace {self.namespace!r}")
            ref = Ref(kind, name, api)
        uri = None
        if "uri" in d:
            uri = r.string(d["uri"], f"{path}.uri")
            if ref is not None:
                if not uri.startswith("/"):
                    raise r.fail(f"{path}.uri", "with a ref, uri is a path appended to the "
                                                f"ref's address and must start with '/', got "
                                                f"{uri!r}")
            else:
                problem = uri_problem(uri)
                if problem:
                    raise r.fail(f"{path}.uri", problem)
        return Destination(ref, uri)

    def kind_word(self) -> str:
        return "object"

    def delivery(self, value: Any, path: str) -> Delivery | None:
        if value is None:
            return None
        r = self.r
        d = r.mapping(value, path, ("retry", "backoffPolicy", "backoffDelay", "deadLetterSink",
                                    "timeout", "retryAfterMax", "format"))
        if "format" in d:
            raise r.fail(f"{path}.format", 'field "format" is valid in Knative but not '
                                           "supported by paasd (events are sent in binary "
                                           "mode); remove it")
        retry = r.integer(d["retry"], f"{path}.retry", 0, 100) if "retry" in d else None
        policy = None
        if "backoffPolicy" in d:
            policy = r.string(d["backoffPolicy"], f"{path}.backoffPolicy")
            if policy not in ("linear", "exponential"):
                raise r.fail(f"{path}.backoffPolicy",
                             f"must be linear or exponential, got {policy!r}")
        durations: dict[str, str | None] = {}
        for key in ("backoffDelay", "timeout", "retryAfterMax"):
            durations[key] = None
            if key in d:
                text = r.string(d[key], f"{path}.{key}")
                try:
                    seconds = iso_duration(text)
                except ValueError as exc:
                    raise r.fail(f"{path}.{key}", str(exc)) from None
                if seconds > MAX_DELAY:
                    raise r.fail(f"{path}.{key}", f"{text} is longer than a day")
                if key == "timeout" and seconds <= 0:
                    raise r.fail(f"{path}.{key}", "must be more than zero")
                durations[key] = text
        dls = (self.destination(d["deadLetterSink"], f"{path}.deadLetterSink")
               if "deadLetterSink" in d else None)
        return Delivery(retry, policy, durations["backoffDelay"], dls, durations["timeout"],
                        durations["retryAfterMax"])


def uri_problem(uri: str) -> str | None:
    """Why an event cannot be sent to `uri`, or None: plain http, on this machine."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        return f"{uri!r} is not a URL: {exc}"
    if parts.scheme != "http" or not parts.hostname:
        return f"must be an absolute http:// URL, got {uri!r}"
    host = parts.hostname
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"{host!r} is not on this machine: paasd sends events only to loopback "
            "(127.0.0.1, [::1], localhost) or to a ref (a Service or Broker)")


def _broker(doc: Located) -> tuple[str, str, Broker]:
    d = _Doc(doc, "Broker", (EVENTING,), ("config", "delivery"))
    if "config" in d.spec:
        raise d.fail("spec.config", 'field "config" is valid in Knative but paasd has one '
                                    "broker class (its own, durable in SQLite); remove it")
    return d.namespace, d.name, Broker(d.meta, d.delivery(d.spec.get("delivery"),
                                                           "spec.delivery"))


def _trigger(doc: Located) -> tuple[str, str, Trigger]:
    d = _Doc(doc, "Trigger", (EVENTING,), ("broker", "brokerRef", "filter", "filters",
                                            "subscriber", "delivery"))
    r = d.r
    for unsupported in ("brokerRef", "filters"):
        if unsupported in d.spec:
            raise d.fail(f"spec.{unsupported}", f'field "{unsupported}" is valid in Knative '
                         "but not supported by paasd; use spec.broker and "
                         "spec.filter.attributes")
    if "broker" not in d.spec:
        raise d.fail("spec", "spec.broker is required: the Broker whose events it filters")
    broker = r.string(d.spec["broker"], "spec.broker")
    check_dns1035(broker, "spec.broker", r.fail)
    flt = r.mapping(d.spec.get("filter"), "spec.filter", ("attributes",))
    attributes = r.string_map(flt.get("attributes"), "spec.filter.attributes")
    if "subscriber" not in d.spec:
        raise d.fail("spec", "spec.subscriber is required: a ref to a Service, or a uri")
    subscriber = d.destination(d.spec["subscriber"], "spec.subscriber")
    return d.namespace, d.name, Trigger(broker, subscriber, attributes,
                                        d.delivery(d.spec.get("delivery"), "spec.delivery"),
                                        d.meta)


def _pingsource(doc: Located) -> tuple[str, str, PingSource]:
    d = _Doc(doc, "PingSource", (SOURCES, "sources.knative.dev/v1beta2"),
             ("schedule", "timezone", "contentType", "data", "dataBase64", "sink",
              "ceOverrides"))
    r = d.r
    spec = d.spec
    if "schedule" not in spec:
        raise d.fail("spec", 'spec.schedule is required: a cron expression such as '
                             '"*/2 * * * *"')
    schedule = r.string(spec["schedule"], "spec.schedule")
    if not croniter.is_valid(schedule) or len(schedule.split()) != 5:
        raise d.fail("spec.schedule", f"{schedule!r} is not a cron expression: five fields "
                                      "(minute hour day-of-month month day-of-week), such as "
                                      '"*/2 * * * *"')
    tz = None
    if "timezone" in spec:
        tz = r.string(spec["timezone"], "spec.timezone")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise d.fail("spec.timezone", f"{tz!r} is not a known time zone; use an IANA name "
                                          'such as "Europe/Paris" or "UTC"') from None
    content_type = (r.string(spec["contentType"], "spec.contentType")
                    if "contentType" in spec else None)
    data = r.string(spec["data"], "spec.data") if "data" in spec else None
    data64 = None
    if "dataBase64" in spec:
        if data is not None:
            raise d.fail("spec.dataBase64", "give data or dataBase64, not both")
        data64 = r.string(spec["dataBase64"], "spec.dataBase64")
        try:
            base64.b64decode(data64, validate=True)
        except (binascii.Error, ValueError):
            raise d.fail("spec.dataBase64", "is not valid base64") from None
    if "sink" not in spec:
        raise d.fail("spec", "spec.sink is required: a ref to a Service or Broker, or a uri")
    sink = d.destination(spec["sink"], "spec.sink")
    overrides = r.mapping(spec.get("ceOverrides"), "spec.ceOverrides", ("extensions",))
    extensions = r.string_map(overrides.get("extensions"), "spec.ceOverrides.extensions")
    return d.namespace, d.name, PingSource(schedule, sink, tz, content_type, data, data64,
                                           extensions, d.meta)


def _containersource(doc: Located) -> tuple[str, str, ContainerSource]:
    d = _Doc(doc, "ContainerSource", (SOURCES,), ("template", "sink", "ceOverrides"))
    r = d.r
    if "template" not in d.spec:
        raise d.fail("spec", "spec.template is required: the pod template whose container "
                             "emits the events")
    service = deployment_name(d.name)
    if len(service) > 63:
        raise d.fail("metadata.name", f"at most {63 - len('-deployment')} characters (its "
                                      f"Service is named {service!r})")
    # the template is a Service's: parsed by the Service parser, lines and paths kept
    svc_doc = {"apiVersion": SERVING, "kind": "Service",
               "metadata": {"name": service, "namespace": d.namespace},
               "spec": {"template": d.spec["template"]}}
    spec = service_from_document(Located(svc_doc, doc.lines, doc.source, doc.start_line))
    if "sink" not in d.spec:
        raise d.fail("spec", "spec.sink is required: a ref to a Service or Broker, or a uri")
    sink = d.destination(d.spec["sink"], "spec.sink")
    overrides = r.mapping(d.spec.get("ceOverrides"), "spec.ceOverrides", ("extensions",))
    extensions = r.string_map(overrides.get("extensions"), "spec.ceOverrides.extensions")
    return d.namespace, d.name, ContainerSource(spec, sink, extensions, d.meta)


def _sinkbinding(doc: Located) -> tuple[str, str, SinkBinding]:
    d = _Doc(doc, "SinkBinding", (SOURCES,), ("subject", "sink", "ceOverrides"))
    r = d.r
    if "subject" not in d.spec:
        raise d.fail("spec", "spec.subject is required: the Service to bind")
    subj = r.mapping(d.spec["subject"], "spec.subject",
                     ("apiVersion", "kind", "name", "namespace", "selector"))
    if "selector" in subj:
        raise d.fail("spec.subject.selector", 'field "selector" is valid in Knative but '
                     "paasd binds one Service by name; give spec.subject.name")
    kind, api = subj.get("kind"), subj.get("apiVersion")
    if kind != "Service" or api != SERVING:
        raise d.fail("spec.subject", f"paasd binds Knative Services ({SERVING}, kind "
                                     f"Service), got {kind} ({api})")
    if "name" not in subj:
        raise d.fail("spec.subject", "spec.subject.name is required")
    name = r.string(subj["name"], "spec.subject.name")
    check_dns1035(name, "spec.subject.name", r.fail)
    ns = subj.get("namespace")
    if ns is not None and r.string(ns, "spec.subject.namespace") != d.namespace:
        raise d.fail("spec.subject.namespace", f"a subject in another namespace ({ns!r}) is "
                                               f"not allowed: it must be in {d.namespace!r}")
    if "sink" not in d.spec:
        raise d.fail("spec", "spec.sink is required: a ref to a Service or Broker, or a uri")
    sink = d.destination(d.spec["sink"], "spec.sink")
    overrides = r.mapping(d.spec.get("ceOverrides"), "spec.ceOverrides", ("extensions",))
    extensions = r.string_map(overrides.get("extensions"), "spec.ceOverrides.extensions")
    return d.namespace, d.name, SinkBinding(name, sink, extensions, d.meta)


# -- export --------------------------------------------------------------------------------


def _metadata(key: ObjectKey, meta: Meta) -> dict[str, Any]:
    out: dict[str, Any] = {"name": key.name, "namespace": key.namespace}
    if meta.labels:
        out["labels"] = dict(meta.labels)
    if meta.annotations:
        out["annotations"] = dict(meta.annotations)
    return out


def destination_doc(dest: Destination, namespace: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if dest.ref is not None:
        out["ref"] = {"apiVersion": dest.ref.api_version, "kind": dest.ref.kind,
                      "name": dest.ref.name, "namespace": namespace}
    if dest.uri is not None:
        out["uri"] = dest.uri
    return out


def delivery_doc(d: Delivery, namespace: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if d.dead_letter_sink is not None:
        out["deadLetterSink"] = destination_doc(d.dead_letter_sink, namespace)
    if d.retry is not None:
        out["retry"] = d.retry
    if d.backoff_policy is not None:
        out["backoffPolicy"] = d.backoff_policy
    if d.backoff_delay is not None:
        out["backoffDelay"] = d.backoff_delay
    if d.timeout is not None:
        out["timeout"] = d.timeout
    if d.retry_after_max is not None:
        out["retryAfterMax"] = d.retry_after_max
    return out


def _doc(api: str, kind: str, key: ObjectKey, meta: Meta, spec: dict[str, Any]
         ) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": _metadata(key, meta), "spec": spec}


def export_broker(key: ObjectKey, b: Broker) -> dict[str, Any]:
    spec = {"delivery": delivery_doc(b.delivery, key.namespace)} if b.delivery else {}
    return _doc(EVENTING, "Broker", key, b.meta, spec)


def export_trigger(key: ObjectKey, t: Trigger) -> dict[str, Any]:
    spec: dict[str, Any] = {"broker": t.broker}
    if t.filter:
        spec["filter"] = {"attributes": dict(t.filter)}
    spec["subscriber"] = destination_doc(t.subscriber, key.namespace)
    if t.delivery is not None:
        spec["delivery"] = delivery_doc(t.delivery, key.namespace)
    return _doc(EVENTING, "Trigger", key, t.meta, spec)


def export_pingsource(key: ObjectKey, p: PingSource) -> dict[str, Any]:
    spec: dict[str, Any] = {"schedule": p.schedule}
    if p.timezone is not None:
        spec["timezone"] = p.timezone
    if p.content_type is not None:
        spec["contentType"] = p.content_type
    if p.data is not None:
        spec["data"] = p.data
    if p.data_base64 is not None:
        spec["dataBase64"] = p.data_base64
    spec["sink"] = destination_doc(p.sink, key.namespace)
    if p.extensions:
        spec["ceOverrides"] = {"extensions": dict(p.extensions)}
    return _doc(SOURCES, "PingSource", key, p.meta, spec)


def export_containersource(key: ObjectKey, c: ContainerSource) -> dict[str, Any]:
    template = service_to_document(c.service)["spec"]["template"]
    spec: dict[str, Any] = {"template": template,
                            "sink": destination_doc(c.sink, key.namespace)}
    if c.extensions:
        spec["ceOverrides"] = {"extensions": dict(c.extensions)}
    return _doc(SOURCES, "ContainerSource", key, c.meta, spec)


def export_sinkbinding(key: ObjectKey, b: SinkBinding) -> dict[str, Any]:
    spec: dict[str, Any] = {"subject": {"apiVersion": SERVING, "kind": "Service",
                                        "name": b.subject, "namespace": key.namespace},
                            "sink": destination_doc(b.sink, key.namespace)}
    if b.extensions:
        spec["ceOverrides"] = {"extensions": dict(b.extensions)}
    return _doc(SOURCES, "SinkBinding", key, b.meta, spec)


def _kind(api_versions: tuple[str, ...], kind: str, plural: str,
          parse: Callable[[Located], tuple[str, str, Any]],
          export: Callable[[ObjectKey, Any], dict[str, Any]]) -> ObjectKind:
    """A kind whose stored form is its exported document (parsed again when read)."""
    def to_json(body: Any) -> Any:
        return export(ObjectKey(kind, "default", "stored"), body)

    def from_json(value: Any) -> Any:
        return parse(Located(value))[2]

    return ObjectKind(api_versions=api_versions, kind=kind, plural=plural, parse=parse,
                      export=export, to_json=to_json, from_json=from_json)


BROKER = _kind((EVENTING,), "Broker", "brokers", _broker, export_broker)
TRIGGER = _kind((EVENTING,), "Trigger", "triggers", _trigger, export_trigger)
PINGSOURCE = _kind((SOURCES, "sources.knative.dev/v1beta2"), "PingSource", "pingsources",
                   _pingsource, export_pingsource)
CONTAINERSOURCE = _kind((SOURCES,), "ContainerSource", "containersources", _containersource,
                        export_containersource)
SINKBINDING = _kind((SOURCES,), "SinkBinding", "sinkbindings", _sinkbinding,
                    export_sinkbinding)
KINDS = kinds_by_version(BROKER, TRIGGER, PINGSOURCE, CONTAINERSOURCE, SINKBINDING)


def next_fire(schedule: str, timezone: str | None, after: float) -> float:
    """The first time (epoch seconds) strictly after `after` at which `schedule` fires in
    `timezone` (UTC when none), as Knative's PingSource reads it."""
    tz = zoneinfo.ZoneInfo(timezone or "UTC")
    start = datetime.fromtimestamp(after, tz)
    return float(croniter(schedule, start).get_next(float))


__all__ = [
    "BROKER",
    "CONTAINERSOURCE",
    "EVENTING",
    "KINDS",
    "PINGSOURCE",
    "SINKBINDING",
    "SOURCES",
    "TRIGGER",
    "Broker",
    "ContainerSource",
    "Delivery",
    "Destination",
    "PingSource",
    "Ref",
    "SinkBinding",
    "Trigger",
    "deployment_name",
    "iso_duration",
    "next_fire",
    "uri_problem",
]
