"""`paasctl requests NAME`: a service's request log, as a table or JSON lines.

Rows are printed as they arrive (with `-f`, as requests finish), so the
columns have fixed widths instead of being aligned over the whole output.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..client import Client

HEADER = (f"{'TIME':<12}  {'STATUS':>6}  {'METHOD':<7} {'PATH':<32} {'LATENCY':>9}  "
          f"{'HOLD':>8}  {'REVISION':<20} {'INSTANCE':<26} REQUEST ID")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("requests", parents=[common],
                       help="a service's request log (status, latency, cold starts)")
    p.add_argument("name", help="the service (--unrouted: requests no service had)",
                   nargs="?")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming new requests")
    p.add_argument("--status", help="only these: a class like 5xx, a code like 404, "
                   "or several: 4xx,5xx")
    p.add_argument("--since", help="only requests since a duration ago (10m, 1h) or an "
                   "RFC 3339 time")
    p.add_argument("--tail", type=int, default=100, help="requests to start with (default 100)")
    p.add_argument("--unrouted", action="store_true",
                   help="requests for hosts no service has (the 404s)")
    p.add_argument("-o", "--output", choices=["json"], help="JSON lines, one per request")
    p.set_defaults(fn=cmd_requests)


def row(r: dict[str, Any]) -> str:
    when = str(r.get("time", ""))[11:23]
    hold = r.get("hold") or 0.0
    hold_text = (f"{hold * 1000:.1f}ms" if hold else "-") + ("*" if r.get("coldStart") else "")
    path = str(r.get("path", ""))
    if len(path) > 32:
        path = path[:31] + "…"
    line = (f"{when:<12}  {r.get('status', 0):>6}  {r.get('method', ''):<7} {path:<32} "
            f"{(r.get('latency') or 0) * 1000:>7.1f}ms  {hold_text:>8}  "
            f"{r.get('revision') or '-':<20} {r.get('instance') or '-':<26} "
            f"{r.get('requestId', '')}")
    if r.get("reason") and int(r.get("status", 0)) >= 400:
        line += f"  ({r['reason']})"
    return line


def cmd_requests(client: Client, args: argparse.Namespace) -> int:
    if not args.name and not args.unrouted:
        print("error: name a service, or --unrouted for requests no service had",
              file=sys.stderr)
        return 2
    logging_off = not client.info().get("observability", {}).get(
        "requestLog", {}).get("enabled", True)
    if logging_off:  # say why nothing new will come, and how to change it
        print("note: request logs are off (the default, as Knative's): set "
              "[observability] request_log = true in paasd's config and reload "
              "(systemctl reload paasd, or SIGHUP)", file=sys.stderr)
    records = client.requests(args.namespace, None if args.unrouted else args.name,
                              follow=args.follow, status=args.status, since=args.since,
                              tail=args.tail)
    out = sys.stdout
    first = True
    try:
        for record in records:
            if args.output == "json":
                out.write(json.dumps(record) + "\n")
            else:
                if first:
                    out.write(HEADER + "\n")
                out.write(row(record) + "\n")
            first = False
            out.flush()
    except KeyboardInterrupt:
        return 0
    if first and args.output != "json" and not args.follow:
        print("No requests found.")
    return 0
