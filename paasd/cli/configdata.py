"""`paasctl secret …` and `paasctl configmap …`: kubectl-shaped commands for Secrets and
ConfigMaps.

`create` builds the `v1` document from `--from-literal KEY=VALUE` and `--from-file
[KEY=]PATH` (the key is the file's name unless given) and applies it like any other
document; `list` shows names, keys and ages (a Secret's values never: the daemon
redacts them before they leave it); `delete` removes one. Values read here go to the
daemon over its socket and nowhere else: never printed.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from typing import Any

from ..client import ApiError, Client
from .output import age, emit, table

KINDS = {"secret": ("Secret", "secrets"), "configmap": ("ConfigMap", "configmaps")}


def add_parsers(sub: Any, common: argparse.ArgumentParser,
                reads: argparse.ArgumentParser) -> None:
    for word, (kind, plural) in KINDS.items():
        aliases = ["secrets"] if word == "secret" else ["configmaps", "cm"]
        top = sub.add_parser(word, aliases=aliases, help=f"{kind}s (v1)")
        verbs = top.add_subparsers(dest="verb", metavar="VERB", required=True)
        if word == "secret":
            create = verbs.add_parser("create", help="create or replace a Secret")
            types = create.add_subparsers(dest="type", metavar="TYPE", required=True)
            p = types.add_parser("generic", parents=[common],
                                 help="an Opaque Secret from literals and files")
        else:
            p = verbs.add_parser("create", parents=[common],
                                 help="create or replace a ConfigMap")
        p.add_argument("name")
        p.add_argument("--from-literal", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--from-file", action="append", default=[], metavar="[KEY=]PATH")
        p.set_defaults(fn=cmd_create, kind=kind)
        p = verbs.add_parser("list", aliases=["ls"], parents=[reads], help=f"list {kind}s")
        p.add_argument("-A", "--all-namespaces", action="store_true")
        p.set_defaults(fn=cmd_list, kind=kind, plural=plural)
        p = verbs.add_parser("delete", aliases=["rm"], parents=[common], help=f"delete a {kind}")
        p.add_argument("name")
        p.set_defaults(fn=cmd_delete, kind=kind, plural=plural)


def _entries(args: argparse.Namespace) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for item in args.from_literal:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ApiError(f"--from-literal {item.split('=')[0]!r}: give KEY=VALUE")
        out[key] = value.encode()
    for item in args.from_file:
        key, sep, path = item.partition("=")
        if not sep:
            key, path = os.path.basename(item), item
        try:
            with open(path, "rb") as f:
                out[key] = f.read()
        except OSError as exc:
            raise ApiError(f"--from-file {path}: {exc.strerror}") from None
    if not out:
        raise ApiError("give at least one --from-literal KEY=VALUE or --from-file PATH")
    return out


def cmd_create(client: Client, args: argparse.Namespace) -> int:
    entries = _entries(args)
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": args.kind,
                           "metadata": {"name": args.name, "namespace": args.namespace}}
    if args.kind == "Secret":
        doc["type"] = "Opaque"
        doc["data"] = {k: base64.b64encode(v).decode() for k, v in entries.items()}
    else:
        text, binary = {}, {}
        for k, v in entries.items():
            try:
                text[k] = v.decode()
            except UnicodeDecodeError:
                binary[k] = base64.b64encode(v).decode()
        doc["data"] = text
        if binary:
            doc["binaryData"] = binary
    result = client.apply_document(doc, filename=f"<paasctl {args.kind.lower()} create>")
    print(f"{args.kind.lower()}/{args.name} {result['outcome']}")
    return 0


def cmd_list(client: Client, args: argparse.Namespace) -> int:
    params = {} if args.all_namespaces else {"namespace": args.namespace}
    body = client.request("GET", f"/v1/objects/{args.plural}", params=params)
    items = body.get("items", [])
    if emit(body, args.output):
        return 0
    if not items:
        print(f"No {args.kind}s found.")
        return 0
    rows = []
    for item in items:
        meta = item["metadata"]
        keys = sorted({**(item.get("data") or {}), **(item.get("binaryData") or {})})
        row = [meta["name"], item.get("type", ""), len(keys), ", ".join(keys),
               age(meta.get("creationTimestamp"))]
        if args.kind != "Secret":
            del row[1]
        rows.append(row)
    headers = ["NAME", "TYPE", "DATA", "KEYS", "AGE"]
    if args.kind != "Secret":
        headers.remove("TYPE")
    print(table(headers, rows))
    return 0


def cmd_delete(client: Client, args: argparse.Namespace) -> int:
    client.request("DELETE", f"/v1/namespaces/{args.namespace}/{args.plural}/{args.name}")
    print(f"{args.kind.lower()}/{args.name} deleted", file=sys.stdout)
    return 0


__all__ = ["add_parsers"]
