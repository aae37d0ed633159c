"""`paasctl domain create|list|describe|delete`: DomainMappings, in kn's shape
(`kn domain create shop.test --ref hello --tls shop-tls`)."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from ..client import Client
from .output import age, cond, emit, table

PLURAL = "domainmappings"


def register(sub: Any, common: argparse.ArgumentParser,
             reads: argparse.ArgumentParser) -> None:
    """Add `domain` to paasctl's parser."""
    dom = sub.add_parser("domain", aliases=["domains", "domainmapping"],
                         help="custom hosts mapped to services (DomainMappings)")
    dsub = dom.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = dsub.add_parser("create", aliases=["update"], parents=[common],
                        help="map a host to a service: DOMAIN --ref SERVICE [--tls SECRET]")
    p.add_argument("domain", help="the host, e.g. shop.test")
    p.add_argument("--ref", required=True, help="the Knative Service it reaches")
    p.add_argument("--tls", metavar="SECRET",
                   help="the secret_name of a [[tls.certificate]] to serve it with "
                        "(default: paasd's CA issues one)")
    p.set_defaults(fn=cmd_domain_create)
    p = dsub.add_parser("list", aliases=["ls"], parents=[reads], help="list DomainMappings")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.set_defaults(fn=cmd_domain_list)
    p = dsub.add_parser("describe", parents=[reads], help="show a DomainMapping")
    p.add_argument("domain")
    p.set_defaults(fn=cmd_domain_describe)
    p = dsub.add_parser("delete", aliases=["rm"], parents=[common],
                        help="delete a DomainMapping")
    p.add_argument("domain")
    p.set_defaults(fn=cmd_domain_delete)


def cmd_domain_create(client: Client, args: argparse.Namespace) -> int:
    spec: dict[str, Any] = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                    "name": args.ref}}
    if args.tls:
        spec["tls"] = {"secretName": args.tls}
    doc = {"apiVersion": "serving.knative.dev/v1beta1", "kind": "DomainMapping",
           "metadata": {"name": args.domain, "namespace": args.namespace}, "spec": spec}
    results = client.apply(yaml.safe_dump(doc, sort_keys=False), "<paasctl domain create>")
    for r in results:
        print(f"domainmapping.serving.knative.dev/{r['name']} {r['outcome']}")
    return 0


def cmd_domain_list(client: Client, args: argparse.Namespace) -> int:
    listed: dict[str, Any] = client.request("GET", f"/v1/objects/{PLURAL}")
    items = [d for d in listed.get("items", []) if args.all_namespaces
             or d["metadata"].get("namespace") == args.namespace]
    if emit({"kind": "DomainMappingList", "items": items}, args.output):
        return 0
    if not items:
        print("No domain mappings found.")
        return 0
    rows = []
    for d in items:
        ready = cond(d)
        rows.append([d["metadata"]["name"], d.get("status", {}).get("url", ""),
                     d["spec"]["ref"]["name"], age(d["metadata"].get("creationTimestamp")),
                     ready["status"], ready.get("reason", "")])
    headers = ["NAME", "URL", "SERVICE", "AGE", "READY", "REASON"]
    if args.all_namespaces:
        headers = ["NAMESPACE", *headers]
        rows = [[d["metadata"]["namespace"], *r] for d, r in zip(items, rows, strict=True)]
    print(table(headers, rows))
    return 0


def cmd_domain_describe(client: Client, args: argparse.Namespace) -> int:
    d: dict[str, Any] = client.request(
        "GET", f"/v1/namespaces/{args.namespace}/{PLURAL}/{args.domain}")
    if emit(d, args.output):
        return 0
    status = d.get("status", {})
    tls = d["spec"].get("tls", {}).get("secretName")
    print(f"Name:       {d['metadata']['name']}\nNamespace:  {d['metadata']['namespace']}\n"
          f"URL:        {status.get('url', '')}\n"
          f"Reference:  Service {d['spec']['ref']['name']}\n"
          f"TLS:        {'secret ' + tls if tls else 'issued by paasd'}\n\nConditions:")
    rows = [[c["type"], c["status"], c.get("reason", ""), c.get("message", "")]
            for c in status.get("conditions", [])]
    print(table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows))
    return 0


def cmd_domain_delete(client: Client, args: argparse.Namespace) -> int:
    client.request("DELETE", f"/v1/namespaces/{args.namespace}/{PLURAL}/{args.domain}")
    print(f"Domain mapping '{args.domain}' deleted in namespace '{args.namespace}'.")
    return 0


__all__ = ["register"]
