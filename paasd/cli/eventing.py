"""paasctl's eventing commands, in kn's shapes: `broker`, `trigger`, `source ping`,
and `event send` (like kn's event plugin).

Creates and updates build the Knative document and apply it through the same
`/v1/apply` as `paasctl apply -f` (so the daemon's parser checks every flag's value
and names the field); reads use the generic object endpoints.
"""

from __future__ import annotations

import argparse
import json
import shlex
import uuid
from typing import Any

import httpx

from ..client import ApiError, Client
from .output import age, cond, emit, table

EVENTING = "eventing.knative.dev/v1"
SOURCES = "sources.knative.dev/v1"


def sink(text: str, namespace: str) -> dict[str, Any]:
    """kn's sink flag: `ksvc:NAME`, `broker:NAME` (or kn's long `Kind:apiVersion:name`),
    or a URL."""
    if text.startswith(("http://", "https://")):
        return {"uri": text}
    prefix, _, name = text.partition(":")
    long = text.split(":")
    if len(long) == 3 and long[0] in ("Service", "Broker"):
        prefix, name = long[0], long[2]
    kinds = {"ksvc": ("Service", "serving.knative.dev/v1"),
             "service": ("Service", "serving.knative.dev/v1"),
             "Service": ("Service", "serving.knative.dev/v1"),
             "broker": ("Broker", EVENTING), "Broker": ("Broker", EVENTING)}
    if prefix not in kinds or not name:
        raise ApiError(f"--sink {text!r}: use ksvc:NAME, broker:NAME or an http:// URL")
    kind, api = kinds[prefix]
    return {"ref": {"apiVersion": api, "kind": kind, "name": name, "namespace": namespace}}


def _show(dest: dict[str, Any] | None) -> str:
    if not dest:
        return ""
    ref = dest.get("ref")
    if ref:
        short = "ksvc" if ref["kind"] == "Service" else ref["kind"].lower()
        return f"{short}:{ref['name']}{dest.get('uri', '')}"
    return str(dest.get("uri", ""))


def _get(client: Client, plural: str, ns: str, name: str) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = client.request("GET", f"/v1/namespaces/{ns}/{plural}/{name}")
        return doc
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _apply(client: Client, doc: dict[str, Any], create: bool, plural: str) -> int:
    meta = doc["metadata"]
    exists = _get(client, plural, meta["namespace"], meta["name"]) is not None
    word = plural[:-1]
    if create and exists:
        raise ApiError(f"{word} {meta['name']!r} already exists in namespace "
                       f"{meta['namespace']!r}; use `paasctl {word} update`")
    result = client.apply_document(doc, f"<paasctl {word}>")
    print(f"{doc['kind']} '{meta['name']}' {result['outcome']} in namespace "
          f"'{meta['namespace']}'.")
    return 0


def _delivery(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "dl_sink", None):
        out["deadLetterSink"] = sink(args.dl_sink, args.namespace)
    if getattr(args, "retry", None) is not None:
        out["retry"] = args.retry
    for flag, key in (("backoff_policy", "backoffPolicy"), ("backoff_delay", "backoffDelay"),
                      ("timeout", "timeout"), ("retry_after_max", "retryAfterMax")):
        if getattr(args, flag, None) is not None:
            out[key] = getattr(args, flag)
    return out


def _list(client: Client, args: argparse.Namespace, plural: str, kind: str,
          headers: list[str], row: Any) -> int:
    ns = None if getattr(args, "all_namespaces", False) else args.namespace
    params = {"namespace": ns} if ns else None
    items = client.request("GET", f"/v1/objects/{plural}", params=params)["items"]
    if emit({"kind": f"{kind}List", "items": items}, args.output):
        return 0
    if not items:
        print(f"No {plural} found.")
        return 0
    print(table(headers, [row(x) for x in items]))
    return 0


def _ready(obj: dict[str, Any]) -> tuple[str, str]:
    c = cond(obj)
    return c["status"], c.get("reason", "")


def _describe_head(obj: dict[str, Any]) -> list[str]:
    meta = obj["metadata"]
    return [f"Name:         {meta['name']}", f"Namespace:    {meta['namespace']}",
            f"Age:          {age(meta.get('creationTimestamp'))}"]


def _conditions(obj: dict[str, Any]) -> list[str]:
    lines = ["", "Conditions:"]
    for c in obj.get("status", {}).get("conditions", []):
        mark = {"True": "++", "False": "!!"}.get(c["status"], "??")
        extra = f"  {c.get('reason', '')} {c.get('message', '')}".rstrip()
        lines.append(f"  {mark} {c['type']}{extra}")
    return lines


# -- broker --------------------------------------------------------------------------------

def cmd_broker_create(client: Client, args: argparse.Namespace) -> int:
    doc: dict[str, Any] = {"apiVersion": EVENTING, "kind": "Broker",
                           "metadata": {"name": args.name, "namespace": args.namespace},
                           "spec": {}}
    delivery = _delivery(args)
    if delivery:
        doc["spec"]["delivery"] = delivery
    return _apply(client, doc, True, "brokers")


def cmd_broker_list(client: Client, args: argparse.Namespace) -> int:
    return _list(client, args, "brokers", "Broker", ["NAME", "URL", "AGE", "READY", "REASON"],
                 lambda b: [b["metadata"]["name"],
                            b.get("status", {}).get("address", {}).get("url", ""),
                            age(b["metadata"].get("creationTimestamp")), *_ready(b)])


def cmd_broker_describe(client: Client, args: argparse.Namespace) -> int:
    b = client.request("GET", f"/v1/namespaces/{args.namespace}/brokers/{args.name}")
    if emit(b, args.output):
        return 0
    st = b.get("status", {})
    lines = [*_describe_head(b),
        f"Address:      {st.get('address', {}).get('url', '')}",
        f"Received:     {st.get('eventsReceived', 0)} events"]
    delivery = b.get("spec", {}).get("delivery")
    if delivery:
        lines.append(f"Delivery:     {json.dumps(delivery)}")
    print("\n".join(lines + _conditions(b)))
    return 0


def cmd_object_delete(client: Client, args: argparse.Namespace) -> int:
    for name in args.names:
        client.request("DELETE", f"/v1/namespaces/{args.namespace}/{args.plural}/{name}")
        print(f"{args.plural[:-1].capitalize()} '{name}' deleted in namespace "
              f"'{args.namespace}'.")
    return 0


# -- trigger -------------------------------------------------------------------------------

def _filters(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ApiError(f"--filter {pair!r}: use ATTRIBUTE=VALUE, e.g. type=order.created")
        out[key] = value
    return out


def cmd_trigger_create(client: Client, args: argparse.Namespace, create: bool = True) -> int:
    old = _get(client, "triggers", args.namespace, args.name)
    spec: dict[str, Any] = dict(old["spec"]) if old and not create else {}
    if args.broker:
        spec["broker"] = args.broker
    spec.setdefault("broker", "default")
    if args.filter:
        spec["filter"] = {"attributes": _filters(args.filter)}
    if args.sink:
        spec["subscriber"] = sink(args.sink, args.namespace)
    if "subscriber" not in spec:
        raise ApiError("--sink is required: ksvc:NAME, broker:NAME or an http:// URL")
    delivery = _delivery(args)
    if delivery:
        spec["delivery"] = {**spec.get("delivery", {}), **delivery}
    doc = {"apiVersion": EVENTING, "kind": "Trigger",
           "metadata": {"name": args.name, "namespace": args.namespace}, "spec": spec}
    return _apply(client, doc, create, "triggers")


def cmd_trigger_update(client: Client, args: argparse.Namespace) -> int:
    if _get(client, "triggers", args.namespace, args.name) is None:
        raise ApiError(f"trigger {args.name!r} not found in namespace {args.namespace!r}")
    return cmd_trigger_create(client, args, create=False)


def cmd_trigger_list(client: Client, args: argparse.Namespace) -> int:
    def row(t: dict[str, Any]) -> list[Any]:
        d = t.get("status", {}).get("deliveries", {})
        return [t["metadata"]["name"], t["spec"]["broker"], _show(t["spec"]["subscriber"]),
                ",".join(f"{k}={v}" for k, v in t["spec"].get("filter", {}).get(
                    "attributes", {}).items()),
                age(t["metadata"].get("creationTimestamp")), *_ready(t),
                d.get("delivered", 0), d.get("deadLettered", 0) + d.get("failed", 0),
                d.get("pending", 0)]
    return _list(client, args, "triggers", "Trigger",
                 ["NAME", "BROKER", "SINK", "FILTER", "AGE", "READY", "REASON", "DELIVERED",
                  "FAILED", "PENDING"], row)


def cmd_trigger_describe(client: Client, args: argparse.Namespace) -> int:
    t = client.request("GET", f"/v1/namespaces/{args.namespace}/triggers/{args.name}")
    if emit(t, args.output):
        return 0
    spec, st = t["spec"], t.get("status", {})
    d = st.get("deliveries", {})
    lines = [*_describe_head(t),
        f"Broker:       {spec['broker']}",
        f"Filter:       {json.dumps(spec.get('filter', {}).get('attributes', {}))}",
        f"Sink:         {_show(spec['subscriber'])}  {st.get('subscriberUri', '')}",
        f"Deliveries:   {d.get('delivered', 0)} delivered, {d.get('retried', 0)} retried, "
        f"{d.get('deadLettered', 0)} dead-lettered, {d.get('failed', 0)} failed, "
        f"{d.get('pending', 0)} pending"]
    if spec.get("delivery"):
        lines.append(f"Delivery:     {json.dumps(spec['delivery'])}")
    recent = d.get("recent", [])
    if recent:
        lines += ["", "Recent deliveries:"]
        lines.append(table(["ID", "TYPE", "STATUS", "OUTCOME", "ATTEMPT", "LATENCY"], [
            [r["id"], r["type"], r["status"] if r["status"] is not None else "-",
             r["outcome"], r["attempt"], f"{r['latencySeconds'] * 1000:.1f}ms"]
            for r in recent]))
    print("\n".join(lines + _conditions(t)))
    return 0


# -- source ping ---------------------------------------------------------------------------

def cmd_ping_create(client: Client, args: argparse.Namespace, create: bool = True) -> int:
    old = _get(client, "pingsources", args.namespace, args.name)
    if not create and old is None:
        raise ApiError(f"ping source {args.name!r} not found in namespace "
                       f"{args.namespace!r}")
    spec: dict[str, Any] = dict(old["spec"]) if old and not create else {}
    if args.schedule:
        spec["schedule"] = args.schedule
    if args.timezone:
        spec["timezone"] = args.timezone
    if args.data is not None:
        if args.encoding == "base64":
            spec.pop("data", None)
            spec["dataBase64"] = args.data
        else:
            spec.pop("dataBase64", None)
            spec["data"] = args.data
    if args.content_type:
        spec["contentType"] = args.content_type
    if args.sink:
        spec["sink"] = sink(args.sink, args.namespace)
    if create:
        spec.setdefault("schedule", "* * * * *")  # kn's default
        if "sink" not in spec:
            raise ApiError("--sink is required: ksvc:NAME, broker:NAME or an http:// URL")
    doc = {"apiVersion": SOURCES, "kind": "PingSource",
           "metadata": {"name": args.name, "namespace": args.namespace}, "spec": spec}
    return _apply(client, doc, create, "pingsources")


def cmd_ping_update(client: Client, args: argparse.Namespace) -> int:
    return cmd_ping_create(client, args, create=False)


def cmd_ping_list(client: Client, args: argparse.Namespace) -> int:
    return _list(client, args, "pingsources", "PingSource",
                 ["NAME", "SCHEDULE", "TIMEZONE", "SINK", "AGE", "READY", "REASON"],
                 lambda p: [p["metadata"]["name"], p["spec"]["schedule"],
                            p["spec"].get("timezone", "UTC"), _show(p["spec"]["sink"]),
                            age(p["metadata"].get("creationTimestamp")), *_ready(p)])


def cmd_ping_describe(client: Client, args: argparse.Namespace) -> int:
    p = client.request("GET", f"/v1/namespaces/{args.namespace}/pingsources/{args.name}")
    if emit(p, args.output):
        return 0
    spec = p["spec"]
    lines = [*_describe_head(p),
        f"Schedule:     {spec['schedule']}",
        f"Timezone:     {spec.get('timezone', 'UTC')}",
        f"Data:         {spec.get('data', spec.get('dataBase64', ''))}",
        f"Sink:         {_show(spec['sink'])}  {p.get('status', {}).get('sinkUri', '')}"]
    print("\n".join(lines + _conditions(p)))
    return 0


# -- source container ----------------------------------------------------------------------

def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for pair in items or []:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ApiError(f"{flag} {pair!r}: use NAME=VALUE")
        out[key] = value
    return out


def cmd_container_create(client: Client, args: argparse.Namespace) -> int:
    if not args.image and not args.cmd:
        raise ApiError("give --image (a container) or --cmd (a command, on the process "
                       "runtime)")
    if not args.sink:
        raise ApiError("--sink is required: ksvc:NAME, broker:NAME or an http:// URL")
    container: dict[str, Any] = {}
    if args.image:
        container["image"] = args.image
    if args.cmd:
        container["command"] = shlex.split(args.cmd)
    if args.arg:
        container["args"] = args.arg
    env = _pairs(args.env, "--env")
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    spec: dict[str, Any] = {"template": {"spec": {"containers": [container]}},
                            "sink": sink(args.sink, args.namespace)}
    overrides = _pairs(args.ce_override, "--ce-override")
    if overrides:
        spec["ceOverrides"] = {"extensions": overrides}
    doc = {"apiVersion": SOURCES, "kind": "ContainerSource",
           "metadata": {"name": args.name, "namespace": args.namespace}, "spec": spec}
    return _apply(client, doc, True, "containersources")


def cmd_container_list(client: Client, args: argparse.Namespace) -> int:
    def row(c: dict[str, Any]) -> list[Any]:
        container = c["spec"]["template"]["spec"]["containers"][0]
        what = container.get("image") or " ".join(container.get("command", []))
        return [c["metadata"]["name"], what, _show(c["spec"]["sink"]),
                age(c["metadata"].get("creationTimestamp")), *_ready(c)]
    return _list(client, args, "containersources", "ContainerSource",
                 ["NAME", "IMAGE/COMMAND", "SINK", "AGE", "READY", "REASON"], row)


def cmd_container_describe(client: Client, args: argparse.Namespace) -> int:
    c = client.request("GET", f"/v1/namespaces/{args.namespace}/containersources/{args.name}")
    if emit(c, args.output):
        return 0
    container = c["spec"]["template"]["spec"]["containers"][0]
    lines = [*_describe_head(c),
             f"Container:    {container.get('image') or ' '.join(container.get('command', []))}",
             f"Service:      {c['metadata']['name']}-deployment",
             f"Sink:         {_show(c['spec']['sink'])}  "
             f"{c.get('status', {}).get('sinkUri', '')}"]
    print("\n".join(lines + _conditions(c)))
    return 0


# -- source binding ------------------------------------------------------------------------

def cmd_binding_create(client: Client, args: argparse.Namespace, create: bool = True) -> int:
    old = _get(client, "sinkbindings", args.namespace, args.name)
    if not create and old is None:
        raise ApiError(f"sink binding {args.name!r} not found in namespace "
                       f"{args.namespace!r}")
    spec: dict[str, Any] = dict(old["spec"]) if old and not create else {}
    if args.subject:
        parts = args.subject.split(":")
        name = parts[-1]
        if len(parts) not in (2, 3) or parts[0] not in ("Service", "ksvc") or not name:
            raise ApiError(f"--subject {args.subject!r}: use Service:serving.knative.dev/v1:"
                           "NAME (kn's form) or ksvc:NAME")
        spec["subject"] = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                           "name": name, "namespace": args.namespace}
    if args.sink:
        spec["sink"] = sink(args.sink, args.namespace)
    overrides = _pairs(args.ce_override, "--ce-override")
    if overrides:
        spec["ceOverrides"] = {"extensions": overrides}
    for needed in ("subject", "sink"):
        if needed not in spec:
            raise ApiError(f"--{needed} is required")
    doc = {"apiVersion": SOURCES, "kind": "SinkBinding",
           "metadata": {"name": args.name, "namespace": args.namespace}, "spec": spec}
    return _apply(client, doc, create, "sinkbindings")


def cmd_binding_update(client: Client, args: argparse.Namespace) -> int:
    return cmd_binding_create(client, args, create=False)


def cmd_binding_list(client: Client, args: argparse.Namespace) -> int:
    return _list(client, args, "sinkbindings", "SinkBinding",
                 ["NAME", "SUBJECT", "SINK", "AGE", "READY", "REASON"],
                 lambda b: [b["metadata"]["name"], f"ksvc:{b['spec']['subject']['name']}",
                            _show(b["spec"]["sink"]),
                            age(b["metadata"].get("creationTimestamp")), *_ready(b)])


def cmd_binding_describe(client: Client, args: argparse.Namespace) -> int:
    b = client.request("GET", f"/v1/namespaces/{args.namespace}/sinkbindings/{args.name}")
    if emit(b, args.output):
        return 0
    lines = [*_describe_head(b),
             f"Subject:      ksvc:{b['spec']['subject']['name']}",
             f"Sink:         {_show(b['spec']['sink'])}  "
             f"{b.get('status', {}).get('sinkUri', '')}"]
    print("\n".join(lines + _conditions(b)))
    return 0


# -- event send ----------------------------------------------------------------------------

def cmd_event_send(client: Client, args: argparse.Namespace) -> int:
    """POST one CloudEvent (binary mode) through the ingress, as kn's event plugin does."""
    info = client.info()
    ingress, domain = info["ingress"]["url"], info["ingress"]["domain"]
    dest = sink(args.to, args.namespace)
    headers = {"ce-specversion": "1.0", "ce-id": args.id or str(uuid.uuid4()),
               "ce-type": args.type, "ce-source": args.source}
    data = args.data
    if args.field:
        fields = json.loads(data) if data else {}
        if not isinstance(fields, dict):
            raise ApiError("--field needs --data to be a JSON object (or no --data)")
        for pair in args.field:
            key, eq, value = pair.partition("=")
            if not eq:
                raise ApiError(f"--field {pair!r}: use NAME=VALUE")
            fields[key] = value
        data = json.dumps(fields)
    body = (data or "").encode()
    if data is not None:
        try:
            json.loads(data)
            headers["content-type"] = "application/json"
        except ValueError:
            headers["content-type"] = "text/plain"
    for pair in args.extension or []:
        key, eq, value = pair.partition("=")
        if not eq:
            raise ApiError(f"--extension {pair!r}: use NAME=VALUE")
        headers[f"ce-{key.lower()}"] = value
    if "uri" in dest:
        url = dest["uri"]
    else:
        ref = dest["ref"]
        if ref["kind"] == "Broker":
            url = f"{ingress}/{args.namespace}/{ref['name']}"
            headers["host"] = f"broker-ingress.knative-eventing.{domain}"
        else:
            url = ingress + "/"
            headers["host"] = f"{ref['name']}.{args.namespace}.{domain}"
    try:
        r = httpx.post(url, content=body, headers=headers, timeout=args.timeout,
                       trust_env=False)
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot send the event to {url}: {exc}") from None
    if r.status_code >= 300:
        raise ApiError(f"the event was refused: {r.status_code} {r.text.strip()}")
    print(f"Event '{headers['ce-id']}' sent to {args.to} ({r.status_code}).")
    return 0


# -- the parser ----------------------------------------------------------------------------

def _delivery_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dl-sink", help="dead-letter sink: ksvc:NAME, broker:NAME or a URL")
    p.add_argument("--retry", type=int, help="retries after the first attempt")
    p.add_argument("--backoff-policy", choices=["linear", "exponential"])
    p.add_argument("--backoff-delay", help="ISO-8601 duration, e.g. PT0.5S")
    p.add_argument("--timeout", help="per attempt, ISO-8601 duration, e.g. PT10S")
    p.add_argument("--retry-after-max", help="honour Retry-After up to this, ISO-8601")


def add_commands(sub: Any, common: argparse.ArgumentParser,
                 reads: argparse.ArgumentParser) -> None:
    """`broker`, `trigger`, `source ping` and `event` on paasctl's subcommand parser."""
    def deleter(parent: Any, plural: str) -> None:
        p = parent.add_parser("delete", aliases=["rm"], parents=[common], help=f"delete {plural}")
        p.add_argument("names", nargs="+", metavar="NAME")
        p.set_defaults(fn=cmd_object_delete, plural=plural)

    def lister(parent: Any, fn: Any, what: str) -> None:
        p = parent.add_parser("list", aliases=["ls"], parents=[reads], help=f"list {what}")
        p.add_argument("-A", "--all-namespaces", action="store_true")
        p.set_defaults(fn=fn)

    def describer(parent: Any, fn: Any, what: str) -> None:
        p = parent.add_parser("describe", parents=[reads], help=f"show a {what}")
        p.add_argument("name")
        p.set_defaults(fn=fn)

    broker = sub.add_parser("broker", aliases=["brokers"], help="eventing brokers")
    bsub = broker.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = bsub.add_parser("create", parents=[common], help="create a broker")
    p.add_argument("name")
    _delivery_flags(p)
    p.set_defaults(fn=cmd_broker_create)
    lister(bsub, cmd_broker_list, "brokers")
    describer(bsub, cmd_broker_describe, "broker")
    deleter(bsub, "brokers")

    trig = sub.add_parser("trigger", aliases=["triggers"], help="eventing triggers")
    tsub = trig.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, fn in (("create", cmd_trigger_create), ("update", cmd_trigger_update)):
        p = tsub.add_parser(verb, parents=[common], help=f"{verb} a trigger")
        p.add_argument("name")
        p.add_argument("--broker", help="the broker (default: default)")
        p.add_argument("--filter", action="append", metavar="ATTR=VALUE",
                       help="exact match on a CloudEvent attribute (repeatable)")
        p.add_argument("-s", "--sink", help="subscriber: ksvc:NAME, broker:NAME or a URL")
        _delivery_flags(p)
        p.set_defaults(fn=fn)
    lister(tsub, cmd_trigger_list, "triggers")
    describer(tsub, cmd_trigger_describe, "trigger")
    deleter(tsub, "triggers")

    source = sub.add_parser("source", aliases=["sources"], help="event sources")
    ssub = source.add_subparsers(dest="source_kind", metavar="KIND", required=True)
    ping = ssub.add_parser("ping", help="PingSources: events on a cron schedule")
    psub = ping.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, fn in (("create", cmd_ping_create), ("update", cmd_ping_update)):
        p = psub.add_parser(verb, parents=[common], help=f"{verb} a ping source")
        p.add_argument("name")
        p.add_argument("--schedule", help='cron, e.g. "*/2 * * * *" (create default: every '
                                          "minute)")
        p.add_argument("--timezone", help="IANA time zone of the schedule (default UTC)")
        p.add_argument("-d", "--data", help="the event's data")
        p.add_argument("-e", "--encoding", choices=["text", "base64"], default="text")
        p.add_argument("--content-type", help="the data's content type")
        p.add_argument("-s", "--sink", help="ksvc:NAME, broker:NAME or a URL")
        p.set_defaults(fn=fn)
    lister(psub, cmd_ping_list, "ping sources")
    describer(psub, cmd_ping_describe, "ping source")
    deleter(psub, "pingsources")

    container = ssub.add_parser("container", help="ContainerSources: an app that emits "
                                "events to $K_SINK")
    csub = container.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = csub.add_parser("create", parents=[common], help="create a container source")
    p.add_argument("name")
    p.add_argument("--image", help="the container image")
    p.add_argument("--cmd", help="the command (process runtime), split as a shell would")
    p.add_argument("--arg", action="append", help="an argument (repeatable)")
    p.add_argument("-e", "--env", action="append", metavar="NAME=VALUE")
    p.add_argument("--ce-override", action="append", metavar="NAME=VALUE",
                   help="a CloudEvent extension the app adds (K_CE_OVERRIDES)")
    p.add_argument("-s", "--sink", help="ksvc:NAME, broker:NAME or a URL")
    p.set_defaults(fn=cmd_container_create)
    lister(csub, cmd_container_list, "container sources")
    describer(csub, cmd_container_describe, "container source")
    deleter(csub, "containersources")

    binding = ssub.add_parser("binding", help="SinkBindings: K_SINK for a service of yours")
    bsub2 = binding.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, fn in (("create", cmd_binding_create), ("update", cmd_binding_update)):
        p = bsub2.add_parser(verb, parents=[common], help=f"{verb} a sink binding")
        p.add_argument("name")
        p.add_argument("--subject", help="Service:serving.knative.dev/v1:NAME or ksvc:NAME")
        p.add_argument("-s", "--sink", help="ksvc:NAME, broker:NAME or a URL")
        p.add_argument("--ce-override", action="append", metavar="NAME=VALUE")
        p.set_defaults(fn=fn)
    lister(bsub2, cmd_binding_list, "sink bindings")
    describer(bsub2, cmd_binding_describe, "sink binding")
    deleter(bsub2, "sinkbindings")

    event = sub.add_parser("event", help="send CloudEvents (like kn's event plugin)")
    esub = event.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = esub.add_parser("send", parents=[common], help="send one CloudEvent")
    p.add_argument("--to", required=True, help="broker:NAME, ksvc:NAME or a URL")
    p.add_argument("--type", required=True, help="the ce-type")
    p.add_argument("--source", default="paasctl", help="the ce-source (default paasctl)")
    p.add_argument("--id", help="the ce-id (default: a random UUID)")
    p.add_argument("--data", help="the data (JSON is sent as application/json)")
    p.add_argument("-f", "--field", action="append", metavar="NAME=VALUE",
                   help="a field of the JSON data (repeatable)")
    p.add_argument("--extension", action="append", metavar="NAME=VALUE",
                   help="a CloudEvent extension attribute (repeatable)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    p.set_defaults(fn=cmd_event_send)


__all__ = ["add_commands", "sink"]
