"""paasctl's commands: each reads or changes the daemon through the API client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import yaml

from ..client import ApiError, Client, edits
from .output import age, cond, emit, table


def cmd_apply(client: Client, args: argparse.Namespace) -> int:
    if args.filename == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        try:
            with open(args.filename, encoding="utf-8") as f:
                text, name = f.read(), args.filename
        except OSError as exc:
            raise ApiError(f"cannot read {args.filename}: {exc.strerror}") from None
    results = client.apply(text, name, dry_run=getattr(args, "dry_run", False))
    if emit({"results": results}, args.output):
        return 0
    for r in results:
        rev = f" (revision {r['revision']})" if r.get("revision") else ""
        what = {"Service": "service.serving.knative.dev"}.get(r.get("kind", "Service"),
                                                             str(r.get("kind", "")).lower())
        print(f"{what}/{r['name']} {r['outcome']}{rev}")
        for note in r.get("notes") or ():
            print(f"note: {note}", file=sys.stderr)
        for warning in r.get("warnings") or ():
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_service_list(client: Client, args: argparse.Namespace) -> int:
    items = client.services(None if args.all_namespaces else args.namespace)
    if emit({"kind": "ServiceList", "items": items}, args.output):
        return 0
    if not items:
        print("No services found.")
        return 0
    rows = []
    for s in items:
        st = s.get("status", {})
        ready = cond(s)
        rows.append([s["metadata"]["name"], st.get("url"),
                     st.get("latestCreatedRevisionName"), age(
                         s["metadata"].get("creationTimestamp")),
                     ready["status"], ready.get("reason", "")])
    headers = ["NAME", "URL", "LATEST", "AGE", "READY", "REASON"]
    if args.all_namespaces:
        headers = ["NAMESPACE", *headers]
        rows = [[s["metadata"]["namespace"], *r] for s, r in zip(items, rows, strict=True)]
    print(table(headers, rows))
    return 0


def cmd_service_describe(client: Client, args: argparse.Namespace) -> int:
    svc = client.service(args.namespace, args.name)
    if emit(svc, args.output):
        return 0
    meta, st = svc["metadata"], svc.get("status", {})
    c = svc["spec"]["template"]["spec"]["containers"][0]
    lines = [
        f"Name:        {meta['name']}",
        f"Namespace:   {meta['namespace']}",
        f"URL:         {st.get('url')}",
        f"Age:         {age(meta.get('creationTimestamp'))}",
        f"Generation:  {meta.get('generation')}",
        f"Source:      {meta.get('annotations', {}).get('paasd.dev/source', 'api')}",
        "",
        "Revisions:",
    ]
    for t in st.get("traffic", []):
        tag = f" #{t['tag']} {t['url']}" if t.get("tag") else ""
        lines.append(f"  {t['percent']:>5}%  {t['revisionName']}"
                     f"{' (latest)' if t.get('latestRevision') else ''}{tag}")
    if st.get("latestCreatedRevisionName") != st.get("latestReadyRevisionName"):
        lines.append(f"        {st.get('latestCreatedRevisionName')} (latest created, not ready)")
    rollout = st.get("rollout")
    if rollout:
        state = f"FAILED: {rollout['failed']}" if rollout.get("failed") else \
            f"{rollout['percent']}% moved"
        lines += ["", f"Rollout:     {rollout['fromRevision']} -> {rollout['toRevision']} over "
                      f"{rollout['durationSeconds']:g}s, {state}"]
        lines += [f"  {step['at']}  +{step['afterSeconds']:>7.1f}s  {step['percent']:>3}%"
                  for step in rollout["schedule"]]
    lines += ["", "Container:"]
    if c.get("image"):
        lines.append(f"  Image:    {c['image']}")
    if c.get("command"):
        lines.append(f"  Command:  {' '.join(c['command'] + c.get('args', []))}")
    for e in c.get("env", []):
        lines.append(f"  Env:      {_env(e)}")
    lines += ["", "Conditions:"]
    conditions = [x for x in st.get("conditions", []) if x["type"] != "Warnings"]
    lines.append(table(["  TYPE", "STATUS", "REASON", "MESSAGE"],
                       [["  " + x["type"], x["status"], x.get("reason", ""),
                         x.get("message", "")] for x in conditions]))
    for x in st.get("conditions", []):
        if x["type"] == "Warnings":  # accepted without effect here: one line each
            lines += ["", "Warnings:"] + [f"  {w}" for w in x.get("message", "").splitlines()]
    health = client.info().get("runtimeHealth") or {}
    if not health.get("ok", True):  # what it shows may be stale, and why
        lines += ["", f"Runtime:     UNAVAILABLE ({health.get('where', '')}): "
                      f"{health.get('message', '')}"]
    print("\n".join(lines))
    return 0


def _env(e: dict[str, Any]) -> str:
    """`NAME=value`, or `NAME from configMap/NAME key KEY` for a valueFrom."""
    source = e.get("valueFrom")
    if not source:
        return f"{e['name']}={e.get('value', '')}"
    kind, ref = next(iter(source.items()))
    what = ref.get("name") or ref.get("fieldPath") or ref.get("resource") or ""
    key = f" key {ref['key']}" if ref.get("key") else ""
    return f"{e['name']} from {kind.removesuffix('KeyRef').removesuffix('Ref')} {what}{key}"


def _template_edits(args: argparse.Namespace) -> dict[str, Any]:
    return {"image": args.image, "cmd": args.cmd, "args": args.arg, "env": args.env,
            "annotations": args.annotation, "scale_min": args.scale_min,
            "scale_max": args.scale_max, "concurrency_limit": args.concurrency_limit,
            "revision_name": args.revision_name}


def _report(result: dict[str, Any]) -> None:
    rev = f" (revision {result['revision']})" if result.get("revision") else ""
    print(f"Service '{result['name']}' {result['outcome']}{rev} in namespace "
          f"'{result['namespace']}'.")


def cmd_service_create(client: Client, args: argparse.Namespace) -> int:
    if getattr(args, "source", None):
        return cmd_build(client, args)  # build the source, deploy it as the first revision
    if not args.cmd and not args.image:
        raise ApiError("give the service a command (--cmd, for the process runtime) or an "
                       "image (--image)")
    doc = edits.edit_template(edits.new_service(args.name, args.namespace),
                              **_template_edits(args))
    if args.output and emit(doc, args.output):
        return 0
    _report(client.apply_document(doc))
    return 0


def cmd_service_update(client: Client, args: argparse.Namespace) -> int:
    doc = client.export(args.namespace, args.name)
    doc = edits.edit_template(doc, **_template_edits(args))
    if args.traffic or args.tag or args.untag:
        doc = edits.edit_traffic(doc, args.traffic or [], args.tag or [], args.untag or [])
    _report(client.apply_document(doc))
    return 0


def cmd_service_rollback(client: Client, args: argparse.Namespace) -> int:
    result = client.rollback(args.namespace, args.name, args.to)
    print(f"Service '{args.name}' rolled back: 100% of traffic to {result['revision']}.")
    return 0


def cmd_service_export(client: Client, args: argparse.Namespace) -> int:
    if args.all:
        docs = client.export_all(None if args.all_namespaces else args.namespace)
    elif args.name:
        docs = [client.export(args.namespace, args.name)]
    else:
        raise ApiError("name a service to export, or use --all")
    if args.output == "json":
        print(json.dumps(docs[0] if len(docs) == 1 and not args.all else
                         {"apiVersion": "v1", "kind": "List", "items": docs}, indent=2))
        return 0
    print(yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False), end="")
    return 0


def cmd_service_delete(client: Client, args: argparse.Namespace) -> int:
    for name in args.names:
        client.delete_service(args.namespace, name)
        print(f"Service '{name}' successfully deleted in namespace '{args.namespace}'.")
    return 0


def cmd_revision_list(client: Client, args: argparse.Namespace) -> int:
    items = client.revisions(None if args.all_namespaces else args.namespace, args.service)
    if emit({"kind": "RevisionList", "items": items}, args.output):
        return 0
    if not items:
        print("No revisions found.")
        return 0
    rows = []
    for r in items:
        st = r.get("status", {})
        meta = r["metadata"]
        rows.append([meta["name"], meta["labels"]["serving.knative.dev/service"],
                     f"{st.get('trafficPercent', 0)}%", ",".join(st.get("tags", [])),
                     meta.get("generation"), cond(r)["status"],
                     f"{st.get('actualReplicas', 0)}/{st.get('desiredReplicas', 0)}",
                     age(meta.get("creationTimestamp"))])
    print(table(["NAME", "SERVICE", "TRAFFIC", "TAGS", "GENERATION", "READY", "INSTANCES",
                 "AGE"], rows))
    return 0


def cmd_revision_describe(client: Client, args: argparse.Namespace) -> int:
    rev = client.revision(args.namespace, args.name)
    if emit(rev, args.output):
        return 0
    meta, st = rev["metadata"], rev.get("status", {})
    c = rev["spec"]["containers"][0]
    ready = cond(rev)
    lines = [
        f"Name:        {meta['name']}",
        f"Namespace:   {meta['namespace']}",
        f"Service:     {meta['labels']['serving.knative.dev/service']}",
        f"Generation:  {meta.get('generation')}",
        f"Age:         {age(meta.get('creationTimestamp'))}",
        f"Command:     {' '.join(c.get('command', []) + c.get('args', []))}",
        f"Image:       {c.get('image', '')}",
        *[f"Env:         {_env(e)}" for e in c.get("env", [])],
        *([f"WorkingDir:  {c['workingDir']}"] if c.get("workingDir") else []),
        f"Concurrency: {rev['spec'].get('containerConcurrency', 0) or 'unlimited'} per "
        f"instance, timeout {rev['spec'].get('timeoutSeconds', 300)}s",
        *[f"Annotation:  {k}={v}" for k, v in meta.get("annotations", {}).items()],
        f"Traffic:     {st.get('trafficPercent', 0)}%"
        f"{' (tags: ' + ', '.join(st['tags']) + ')' if st.get('tags') else ''}",
        f"Instances:   {st.get('actualReplicas', 0)} ready / {st.get('desiredReplicas', 0)} "
        "desired",
        f"Ready:       {ready['status']} {ready.get('reason', '')} {ready.get('message', '')}"
        .rstrip(),
        *([f"Autoscaler:  {m['desiredInstances']} desired ({m['scaleReason']})"
           f"{', PANIC' if m['panic'] else ''}; {m['requestsPerSecond']} req/s, "
           f"{m['inFlight']} in flight, {m['waiting']} waiting"]
          if (m := st.get("metrics")) else []),
        "",
        "Instances:",
    ]
    inst = rev.get("instances", [])
    lines.append(table(["  ID", "PHASE", "ADDRESS", "REF", "RESTARTS", "AGE", "MESSAGE"],
                       [["  " + i["id"], i["phase"], i["address"], _pid(i), i["restarts"],
                         age(i["startedAt"]), i["message"]] for i in inst]) if inst
                 else "  (none)")
    lines += ["", "Events:"]
    events = rev.get("events", [])
    lines.append(table(["  TIME", "REASON", "MESSAGE"],
                       [["  " + e["time"], e["reason"], e["message"]] for e in events])
                 if events else "  (none)")
    print("\n".join(lines))
    return 0


def _pid(instance: dict[str, Any]) -> Any:
    """The REF column: what the runtime calls the instance — a process id, a container's
    short id, a pod name."""
    ref = instance.get("ref") or {}
    name = str(ref.get("name") or "")
    return name[:12] if ref.get("kind") == "container" else name


def cmd_route_list(client: Client, args: argparse.Namespace) -> int:
    items = client.routes()
    if emit({"kind": "RouteList", "items": items}, args.output):
        return 0
    if not items:
        print("No routes found.")
        return 0
    print(table(["HOST", "SERVICE", "TRAFFIC"],
                [[r["host"], r["service"], ", ".join(f"{t['percent']}% -> {t['revision']}"
                                                     for t in r["traffic"]) or "(none)"]
                 for r in items]))
    return 0


def cmd_instance_list(client: Client, args: argparse.Namespace) -> int:
    items = client.instances()
    if emit({"kind": "InstanceList", "items": items}, args.output):
        return 0
    if not items:
        print("No instances found.")
        return 0
    print(table(["ID", "REVISION", "PHASE", "ADDRESS", "REF", "RESTARTS", "AGE", "MESSAGE"],
                [[i["id"], i["revision"], i["phase"], i["address"], _pid(i), i["restarts"],
                  age(i["startedAt"]), i["message"]] for i in items]))
    return 0


def cmd_proxy_url(client: Client, args: argparse.Namespace) -> int:
    info = client.info()
    if emit({"url": info["ingress"]["url"]}, args.output):
        return 0
    print(info["ingress"]["url"])
    return 0


def cmd_info(client: Client, args: argparse.Namespace) -> int:
    info = client.info()
    if emit(info, args.output):
        return 0
    health = info.get("runtimeHealth") or {}
    rows = [["version", info["version"]], ["runtime", info["runtime"]]]
    if health.get("where"):
        rows.append(["runtime at", health["where"]])
    if health:
        rows.append(["runtime health", "ok" if health.get("ok", True)
                     else f"UNAVAILABLE: {health.get('message', '')}"])
    rows += [["ingress", info["ingress"]["url"]], ["domain", info["ingress"]["domain"]],
             ["socket", info["socket"]], ["state dir", info["stateDir"]],
             ["config", info["config"] or "(built-in defaults)"],
             ["uptime", f"{info['uptimeSeconds']:.0f}s"]]
    if info["ingress"].get("httpsPort"):  # [tls] on
        rows.insert(rows.index(["domain", info["ingress"]["domain"]]),
                    ["https", f"port {info['ingress']['httpsPort']} (paasctl tls status)"])
    obs = info.get("observability")
    if obs:  # request logs and tracing ([observability])
        log, tracing = obs["requestLog"], obs["tracing"]
        rows.append(["request log", f"{log['dir']} ({log['written']} written, "
                                    f"{log['dropped']} dropped)" if log["enabled"] else "off"])
        rows.append(["tracing", f"OTLP {tracing['otlpEndpoint']}, sampling "
                                f"{tracing['samplingRatio']:g} ({tracing['exportedSpans']} "
                                f"spans exported, {tracing['droppedSpans']} dropped)"
                     if tracing["otlpEndpoint"] else "no export (otlp_endpoint not set)"])
    print(table(["FIELD", "VALUE"], rows))
    return 0


def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    try:
        for chunk in client.logs(args.namespace, args.name, args.follow, args.tail):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_tui(client: Client, args: argparse.Namespace) -> int:
    from tui.app import run  # Textual loads only for this command

    return run(client.socket)


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    try:
        for event in client.watch():
            print(json.dumps(event), flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_config_reload(client: Client, args: argparse.Namespace) -> int:
    try:
        result = client.reload_config()
    except ApiError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise
    for change in result.get("changes", []) or ["no changes"]:
        print(change)
    return 0


def _wait_build(client: Client, namespace: str, build: dict[str, Any], show_log: bool) -> int:
    """Stream (or just wait out) a build's log; 0 if it deployed or changed nothing."""
    out = sys.stdout.buffer
    for chunk in client.build_log(namespace, build["id"], follow=True):
        if show_log:
            out.write(chunk)
            out.flush()
    result = client.get_build(namespace, build["id"])
    if result["status"] == "failed":
        print(f"error: {result['message']}", file=sys.stderr)
        return 1
    if not show_log:
        print(result["message"])
    return 0


def cmd_build(client: Client, args: argparse.Namespace) -> int:
    source = os.path.abspath(args.source)
    if getattr(args, "print_dockerfile", False):
        print(client.dockerfile(source)["dockerfile"], end="")
        return 0
    build = client.build(args.namespace, args.name, source)
    print(f"Build {build['id']} queued for service '{args.name}' from {source}.", flush=True)
    return _wait_build(client, args.namespace, build, getattr(args, "follow", False))


def cmd_build_list(client: Client, args: argparse.Namespace) -> int:
    items = client.builds(args.namespace, args.service)
    if emit({"kind": "BuildList", "items": items}, args.output):
        return 0
    if not items:
        print("No builds found.")
        return 0
    print(table(["ID", "SERVICE", "STATUS", "STACK", "DURATION", "DIGEST", "REVISION",
                 "MESSAGE"],
                [[b["id"], b["service"], b["status"], b["stack"],
                  f"{b['durationSeconds']:.1f}s" if b.get("durationSeconds") else "",
                  b["digest"][:12], b["revision"], b["message"].splitlines()[0][:60]
                  if b["message"] else ""] for b in items]))
    return 0


def cmd_git_init(client: Client, args: argparse.Namespace) -> int:
    result = client.git_init(args.namespace, args.name, sys.executable)
    repo = result["repository"]
    print(f"Repository {repo} created; push to it to build and deploy '{args.name}':\n"
          f"  git remote add paasd {repo}\n  git push paasd main")
    return 0


def cmd_git_receive(client: Client, args: argparse.Namespace) -> int:
    """The repository's pre-receive hook: build each pushed main/master commit."""
    env = {k: v for k, v in os.environ.items()
           if k in ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                    "GIT_QUARANTINE_PATH")}
    repo = os.path.abspath(os.environ.get("GIT_DIR", "."))
    code = 0
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        _old, new, ref = parts
        if set(new) == {"0"}:
            continue  # a deleted branch: nothing to build
        if ref not in ("refs/heads/main", "refs/heads/master"):
            print(f"paasd: {ref} pushed; only main (or master) is built and deployed")
            continue
        build = client.build_git(args.namespace, args.name, repo, new, env)
        print(f"paasd: build {build['id']} of {new[:12]} for service '{args.name}'", flush=True)
        code = max(code, _wait_build(client, args.namespace, build, True))
    return code


def cmd_config_check(client: Client, args: argparse.Namespace) -> int:
    with open(args.filename, encoding="utf-8") as f:
        result = client.check_config(f.read(), args.filename)
    if result.get("ok"):
        print(f"{args.filename}: OK")
        return 0
    for problem in result.get("problems", []):
        print(problem, file=sys.stderr)
    return 1


