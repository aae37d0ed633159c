"""`paasctl`: the client, in the style of `kn` and `kubectl`.

Talks only to the control API through `paasd.client`. Human output is
aligned tables; every read takes `-o json|yaml`; errors are one line that
says what to do, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys

from ..client import ApiError, Client, edits
from . import commands, configdata, domains, requests, tls
from . import eventing as eventing_commands

DEFAULT_NAMESPACE = "default"


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
    p.add_argument("--dry-run", action="store_true",
                   help="check everything the daemon would check, change nothing")
    p.set_defaults(fn=commands.cmd_apply)

    svc = sub.add_parser("service", aliases=["services", "svc", "ksvc"], help="services")
    ssub = svc.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = ssub.add_parser("list", aliases=["ls"], parents=[reads], help="list services")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.set_defaults(fn=commands.cmd_service_list)
    p = ssub.add_parser("describe", parents=[reads], help="show a service")
    p.add_argument("name")
    p.set_defaults(fn=commands.cmd_service_describe)
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
                   "(docker or kubernetes runtime; see `paasctl build`)")
    p.add_argument("-f", "--follow", action="store_true", help="with --source: stream the "
                   "build log")
    p.set_defaults(fn=commands.cmd_service_create)
    p = ssub.add_parser("update", parents=[common, template_flags],
                        help="change a service: template flags make a new revision; "
                             "traffic flags do not")
    p.add_argument("name")
    p.add_argument("--traffic", action="append", help="REV=PERCENT[,…]; REV may be "
                   "@latest or a tag, e.g. --traffic hello-00001=90,@latest=10")
    p.add_argument("--tag", action="append", help="REV=TAG: TAG-NAME.NS.DOMAIN reaches REV")
    p.add_argument("--untag", action="append", help="remove a tag")
    p.set_defaults(fn=commands.cmd_service_update)
    p = ssub.add_parser("rollback", parents=[common],
                        help="send 100%% of traffic to the previous (or named) ready revision")
    p.add_argument("name")
    p.add_argument("--to", metavar="REVISION", help="the revision to roll back to")
    p.set_defaults(fn=commands.cmd_service_rollback)
    p = ssub.add_parser("export", parents=[common],
                        help="print Knative serving.knative.dev/v1 YAML for services")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="every service (of -n, or -A)")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=["json", "yaml"], default="yaml")
    p.set_defaults(fn=commands.cmd_service_export)
    p = ssub.add_parser("delete", aliases=["rm"], parents=[common], help="delete services")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(fn=commands.cmd_service_delete)

    rev = sub.add_parser("revision", aliases=["revisions", "rev"], help="revisions")
    rsub = rev.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = rsub.add_parser("list", aliases=["ls"], parents=[reads], help="list revisions")
    p.add_argument("service", nargs="?")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.set_defaults(fn=commands.cmd_revision_list)
    p = rsub.add_parser("describe", parents=[reads], help="show a revision")
    p.add_argument("name")
    p.set_defaults(fn=commands.cmd_revision_describe)

    route = sub.add_parser("route", aliases=["routes"], help="routes")
    rosub = route.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = rosub.add_parser("list", aliases=["ls"], parents=[reads], help="list routes")
    p.set_defaults(fn=commands.cmd_route_list)

    inst = sub.add_parser("instance", aliases=["instances"], help="instances")
    isub = inst.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = isub.add_parser("list", aliases=["ls"], parents=[reads], help="list instances")
    p.set_defaults(fn=commands.cmd_instance_list)

    proxy = sub.add_parser("proxy", help="the ingress")
    psub = proxy.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = psub.add_parser("url", parents=[reads], help="print the ingress URL")
    p.set_defaults(fn=commands.cmd_proxy_url)

    p = sub.add_parser("logs", parents=[common], help="print a service's logs")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming new output")
    p.add_argument("--tail", type=int, default=100, help="lines per instance to start with")
    p.set_defaults(fn=commands.cmd_logs)

    requests.add_parser(sub, common)

    p = sub.add_parser("build", parents=[common], help="build a source directory into an "
                       "image and deploy it as a new revision")
    p.add_argument("name", help="the service")
    p.add_argument("--source", required=True, help="the source directory (on this machine)")
    p.add_argument("-f", "--follow", action="store_true", help="stream the build log")
    p.add_argument("--print-dockerfile", action="store_true",
                   help="print the Dockerfile the build would use, and build nothing")
    p.set_defaults(fn=commands.cmd_build)
    p = sub.add_parser("builds", parents=[reads], help="list builds")
    p.add_argument("service", nargs="?")
    p.set_defaults(fn=commands.cmd_build_list)
    git = sub.add_parser("git", help="git push deploys")
    gsub = git.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = gsub.add_parser("init", parents=[common], help="create a repository to push to")
    p.add_argument("name")
    p.set_defaults(fn=commands.cmd_git_init)
    p = gsub.add_parser("receive", parents=[common],
                        help="(the repository's hook) build pushed commits")
    p.add_argument("name")
    p.set_defaults(fn=commands.cmd_git_receive)

    p = sub.add_parser("info", aliases=["version"], parents=[reads], help="daemon facts")
    p.set_defaults(fn=commands.cmd_info)
    p = sub.add_parser("watch", help="stream every state change as JSON lines")
    p.set_defaults(fn=commands.cmd_watch)
    p = sub.add_parser("tui", help="the terminal UI: watch and steer the daemon (docs/tui.md)")
    p.set_defaults(fn=commands.cmd_tui)

    configdata.add_parsers(sub, common, reads)  # secret, configmap

    cfg = sub.add_parser("config", help="the daemon's config file")
    csub = cfg.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = csub.add_parser("reload", help="re-read paasd.toml (a bad file changes nothing)")
    p.set_defaults(fn=commands.cmd_config_reload)
    p = csub.add_parser("check", help="validate a config file through the daemon")
    p.add_argument("filename")
    p.set_defaults(fn=commands.cmd_config_check)
    tls.register(sub, reads)
    domains.register(sub, common, reads)
    eventing_commands.add_commands(sub, common, reads)
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
