"""The container image reference grammar (the distribution project's `reference`).

An image that cannot be a reference (`${REPO}/app`, `My/App`) is refused at
apply with the rule it breaks, instead of being accepted and pulled in vain
forever. Pure.

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path-component [ "/" path-component ]*
    domain    := host [ ":" port ]
    path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex (32 or more hex digits)
"""

from __future__ import annotations

import re

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
                     r"(?::[0-9]+)?$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
NAME_MAX = 255
GRAMMAR = ("[registry[:port]/]path[:tag][@digest], path components of lowercase letters "
           "and digits separated by '.', '_', '__' or '-'")


def image_reference_problem(image: str) -> str | None:
    """Why `image` cannot be an image reference, or None."""
    if not image:
        return "must not be empty: give an image reference such as docker.io/library/nginx"
    if image != image.strip() or any(ch.isspace() for ch in image):
        return f"{image!r} is not an image reference: it contains white space"
    rest, _, digest = image.partition("@")
    if "@" in image and not _DIGEST.match(digest):
        return (f"{image!r} is not an image reference: the digest {digest!r} must be "
                "algorithm:hex (for example sha256: and 64 hex digits)")
    name, tag = rest, None
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1:]
    if tag is not None and not _TAG.match(tag):
        return (f"{image!r} is not an image reference: the tag {tag!r} must be letters, "
                "digits, '_', '.' and '-', at most 128, not starting with '.' or '-'")
    if not name:
        return f"{image!r} is not an image reference: it has no name ({GRAMMAR})"
    if len(name) > NAME_MAX:
        return f"{image!r} is not an image reference: the name is over {NAME_MAX} characters"
    parts = name.split("/")
    if len(parts) > 1 and (("." in parts[0] or ":" in parts[0]) or parts[0] == "localhost"
                           or parts[0].startswith("[")):
        domain, parts = parts[0], parts[1:]
        if not _DOMAIN.match(domain):
            return (f"{image!r} is not an image reference: {domain!r} is not a registry "
                    "host[:port]")
    for part in parts:
        if not _PATH_COMPONENT.match(part):
            hint = ""
            if "$" in part or "{" in part or "<" in part:
                hint = "; it looks like a placeholder that was not filled in"
            elif part.lower() != part:
                hint = "; repository names are lowercase"
            return (f"{image!r} is not an image reference: {part!r} is not a valid path "
                    f"component{hint} ({GRAMMAR})")
    return None


__all__ = ["image_reference_problem"]
