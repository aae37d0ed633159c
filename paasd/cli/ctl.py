"""`paasctl`: the client, in the style of `kn` and `kubectl`.

Talks only to the control API through `paasd.client`. Human output is
aligned tables; every read takes `-o json|yaml`; errors are one line that
says what to do, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from ..client import ApiError, Client, edits

DEFAULT_NAMESPACE = "default"


def age(stamp: str | None, now: float | None = None) -> str:
    """kubectl-style age: 45s, 3m, 2h, 5d."""
    if not stamp:
        return "<unknown>"
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    secs = max(0, int((now or time.time()) - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in r]
                                           for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


def emit(data: Any, output: str | None) -> bool:
    """Print machine output for -o; False when the caller should print a table."""
    if output == "json":
        print(json.dumps(data, indent=2))
        return True
    if output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
        return True
    return False


def cond(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return {"status": "Unknown"}


# -- commands ------------------------------------------------------------------

def cmd_apply(client: Client, args: argparse.Namespace) -> int:
    if args.filename == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        try:
            with open(args.filename, encoding="utf-8") as f:
                text, name = f.read(), args.filename
        except OSError as exc:
            raise ApiError(f"cannot read {args.filename}: {exc.strerror}") from None
    results = client.apply(text, name)
    if emit({"results": results}, args.output):
        return 0
    for r in results:
        rev = f" (revision {r['revision']})" if r.get("revision") else ""
        print(f"service.serving.knative.dev/{r['name']} {r['outcome']}{rev}")
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
        lines.append(f"  Env:      {e['name']}={e['value']}")
    lines += ["", "Conditions:"]
    lines.append(table(["  TYPE", "STATUS", "REASON", "MESSAGE"],
                       [["  " + x["type"], x["status"], x.get("reason", ""),
                         x.get("message", "")] for x in st.get("conditions", [])]))
    print("\n".join(lines))
    return 0


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
        *[f"Env:         {e['name']}={e['value']}" for e in c.get("env", [])],
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
    lines.append(table(["  ID", "PHASE", "ADDRESS", "PID", "RESTARTS", "AGE", "MESSAGE"],
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
    """The PID column: a process id, or a container's short id (docker runtime)."""
    return instance["pid"] or (instance.get("container") or "")[:12]


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
    print(table(["ID", "REVISION", "PHASE", "ADDRESS", "PID", "RESTARTS", "AGE", "MESSAGE"],
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
    print(table(["FIELD", "VALUE"], [
        ["version", info["version"]], ["runtime", info["runtime"]],
        ["ingress", info["ingress"]["url"]], ["domain", info["ingress"]["domain"]],
        ["socket", info["socket"]], ["state dir", info["stateDir"]],
        ["config", info["config"] or "(built-in defaults)"],
        ["uptime", f"{info['uptimeSeconds']:.0f}s"]]))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paasctl",
                                     description="Control a paasd daemon over its socket.")
    parser.add_argument("--socket", help="control socket (default: $PAASD_SOCKET, then the "
                        "daemon's default)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=DEFAULT_NAMESPACE)
    reads = argparse.ArgumentParser(add_help=False, parents=[common])
    reads.add_argument("-o", "--output", choices=["json", "yaml"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("apply", parents=[reads], help="create or update services from YAML")
    p.add_argument("-f", "--filename", required=True, help="Knative Service YAML, or - for stdin")
    p.set_defaults(fn=cmd_apply)

    svc = sub.add_parser("service", aliases=["services", "svc", "ksvc"], help="services")
    ssub = svc.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = ssub.add_parser("list", aliases=["ls"], parents=[reads], help="list services")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.set_defaults(fn=cmd_service_list)
    p = ssub.add_parser("describe", parents=[reads], help="show a service")
    p.add_argument("name")
    p.set_defaults(fn=cmd_service_describe)
    template_flags = argparse.ArgumentParser(add_help=False)
    template_flags.add_argument("--image", help="the container image (docker, kubernetes)")
    template_flags.add_argument("--cmd", action="append", help="command (repeat for each "
                                "word), e.g. --cmd python3 --cmd app.py")
    template_flags.add_argument("--arg", action="append", help="an argument (repeatable)")
    template_flags.add_argument("-e", "--env", action="append",
                                help="NAME=VALUE (NAME- removes it); repeatable")
    template_flags.add_argument("-a", "--annotation", action="append",
                                help="KEY=VALUE on the revision template; repeatable")
    template_flags.add_argument("--scale-min", type=int, help="autoscaling min-scale")
    template_flags.add_argument("--scale-max", type=int, help="autoscaling max-scale")
    template_flags.add_argument("--concurrency-limit", type=int,
                                help="containerConcurrency: hard limit per instance")
    template_flags.add_argument("--revision-name", help="name the new revision (NAME-…)")
    p = ssub.add_parser("create", parents=[common, template_flags],
                        help="create a service from flags (as kn service create)")
    p.add_argument("name")
    p.add_argument("-o", "--output", choices=["json", "yaml"],
                   help="print the Knative YAML instead of creating it")
    p.add_argument("--source", help="build this directory into an image and deploy it "
                   "(docker runtime; see `paasctl build`)")
    p.add_argument("-f", "--follow", action="store_true", help="with --source: stream the "
                   "build log")
    p.set_defaults(fn=cmd_service_create)
    p = ssub.add_parser("update", parents=[common, template_flags],
                        help="change a service: template flags make a new revision; "
                             "traffic flags do not")
    p.add_argument("name")
    p.add_argument("--traffic", action="append", help="REV=PERCENT[,…]; REV may be "
                   "@latest or a tag, e.g. --traffic hello-00001=90,@latest=10")
    p.add_argument("--tag", action="append", help="REV=TAG: TAG-NAME.NS.DOMAIN reaches REV")
    p.add_argument("--untag", action="append", help="remove a tag")
    p.set_defaults(fn=cmd_service_update)
    p = ssub.add_parser("rollback", parents=[common],
                        help="send 100%% of traffic to the previous (or named) ready revision")
    p.add_argument("name")
    p.add_argument("--to", metavar="REVISION", help="the revision to roll back to")
    p.set_defaults(fn=cmd_service_rollback)
    p = ssub.add_parser("export", parents=[common],
                        help="print Knative serving.knative.dev/v1 YAML for services")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="every service (of -n, or -A)")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=["json", "yaml"], default="yaml")
    p.set_defaults(fn=cmd_service_export)
    p = ssub.add_parser("delete", aliases=["rm"], parents=[common], help="delete services")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(fn=cmd_service_delete)

    rev = sub.add_parser("revision", aliases=["revisions", "rev"], help="revisions")
    rsub = rev.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = rsub.add_parser("list", aliases=["ls"], parents=[reads], help="list revisions")
    p.add_argument("service", nargs="?")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.set_defaults(fn=cmd_revision_list)
    p = rsub.add_parser("describe", parents=[reads], help="show a revision")
    p.add_argument("name")
    p.set_defaults(fn=cmd_revision_describe)

    route = sub.add_parser("route", aliases=["routes"], help="routes")
    rosub = route.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = rosub.add_parser("list", aliases=["ls"], parents=[reads], help="list routes")
    p.set_defaults(fn=cmd_route_list)

    inst = sub.add_parser("instance", aliases=["instances"], help="instances")
    isub = inst.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = isub.add_parser("list", aliases=["ls"], parents=[reads], help="list instances")
    p.set_defaults(fn=cmd_instance_list)

    proxy = sub.add_parser("proxy", help="the ingress")
    psub = proxy.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = psub.add_parser("url", parents=[reads], help="print the ingress URL")
    p.set_defaults(fn=cmd_proxy_url)

    p = sub.add_parser("logs", parents=[common], help="print a service's logs")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming new output")
    p.add_argument("--tail", type=int, default=100, help="lines per instance to start with")
    p.set_defaults(fn=cmd_logs)

    p = sub.add_parser("build", parents=[common], help="build a source directory into an "
                       "image and deploy it as a new revision")
    p.add_argument("name", help="the service")
    p.add_argument("--source", required=True, help="the source directory (on this machine)")
    p.add_argument("-f", "--follow", action="store_true", help="stream the build log")
    p.add_argument("--print-dockerfile", action="store_true",
                   help="print the Dockerfile the build would use, and build nothing")
    p.set_defaults(fn=cmd_build)
    p = sub.add_parser("builds", parents=[reads], help="list builds")
    p.add_argument("service", nargs="?")
    p.set_defaults(fn=cmd_build_list)
    git = sub.add_parser("git", help="git push deploys")
    gsub = git.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = gsub.add_parser("init", parents=[common], help="create a repository to push to")
    p.add_argument("name")
    p.set_defaults(fn=cmd_git_init)
    p = gsub.add_parser("receive", parents=[common],
                        help="(the repository's hook) build pushed commits")
    p.add_argument("name")
    p.set_defaults(fn=cmd_git_receive)

    p = sub.add_parser("info", aliases=["version"], parents=[reads], help="daemon facts")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("watch", help="stream every state change as JSON lines")
    p.set_defaults(fn=cmd_watch)
    p = sub.add_parser("tui", help="the terminal UI: watch and steer the daemon (docs/tui.md)")
    p.set_defaults(fn=cmd_tui)

    cfg = sub.add_parser("config", help="the daemon's config file")
    csub = cfg.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = csub.add_parser("reload", help="re-read paasd.toml (a bad file changes nothing)")
    p.set_defaults(fn=cmd_config_reload)
    p = csub.add_parser("check", help="validate a config file through the daemon")
    p.add_argument("filename")
    p.set_defaults(fn=cmd_config_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except edits.EditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    try:
        with Client(args.socket) as client:
            result: int = args.fn(client, args)
            return result
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
