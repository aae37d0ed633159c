"""Header fields as the ingress passes them on: hop-by-hop fields dropped.

A response head from an HTTP/1.1 instance is relayed as a block of bytes
(`Name: value\\r\\n` lines, the names as the instance wrote them), minus the
hop-by-hop fields, the ones its `Connection` names and the framing
(Content-Length and Transfer-Encoding are set again by whoever frames the
body). The block is made from llhttp's per-field callbacks, which already split
and trim each field: one set lookup and one concatenation per field — cheaper
than scanning the raw head again with a case-insensitive regex. HTTP/2 wants a
list; `block_fields` makes one.
"""

from __future__ import annotations

import os

Headers = list[tuple[bytes, bytes]]

# X-Request-Id: random per process, then a counter (unique, and cheaper than uuid4)
REQUEST_ID_PREFIX = os.urandom(10).hex().encode()

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection",
    b"http2-settings",
})

# request fields the ingress reads (and sets again) before it passes a request on
REQUEST_SPECIAL = frozenset({b"host", b"content-length", b"x-request-id", b"x-forwarded-for",
                             b"x-forwarded-proto", b"traceparent", b"expect"})

# Headers a `Connection:` list may not remove: the proxy needs them end to end (and
# `close`/`keep-alive`/`upgrade` are the connection's own options, not field names).
KEPT_END_TO_END = frozenset({b"close", b"keep-alive", b"upgrade", b"host", b"content-length",
                             b"transfer-encoding"})


# what the relay drops from a response head: the hop-by-hop fields (RFC 9110 7.6.1) and
# the framing (Content-Length and Transfer-Encoding are set again by whoever frames the body)
RESPONSE_DROPPED = HOP_BY_HOP | {b"content-length"}


class ResponseHead:
    """A response head as the parser reports it: its reason phrase and its fields, kept
    as `Name: value` lines.

    `status` and `field` are the parser's callbacks themselves (no call in between:
    `field` runs once per field of every response); the rare case — a `Connection`
    that names fields to drop — is settled once, in `take`."""

    __slots__ = ("chunked", "kept", "length", "named", "reason")

    def __init__(self) -> None:
        self.kept: list[bytes] = [b""]
        self.length: int | None = None
        self.chunked = False
        self.named: set[bytes] | None = None
        self.reason = b""

    def status(self, reason: bytes) -> None:
        self.reason = reason  # (not called at all for a status line without a reason)

    def field(self, name: bytes, value: bytes) -> None:
        low = name.lower()
        if low in RESPONSE_DROPPED:
            if low == b"content-length":
                self.length = int(value)  # llhttp checked it is one valid number
            elif low == b"transfer-encoding":
                self.chunked = True
            elif low == b"connection":
                value = value.lower()
                if value != b"keep-alive" and value != b"close":  # names fields to drop
                    tokens = {t.strip() for t in value.split(b",")} - KEPT_END_TO_END
                    if tokens:
                        self.named = (self.named or set()) | tokens
        else:
            self.kept.append(name + b": " + value)

    def take(self) -> tuple[bytes, bytes, int | None, bool]:
        """(the reason phrase; the kept fields as a block: an LF, then `Name: value\\r\\n`
        lines; Content-Length; chunked), and start over for the next head."""
        kept = self.kept
        self.kept = [b""]
        named = self.named
        if named is not None:
            self.named = None
            kept = [b""] + [line for line in kept[1:]
                            if line.partition(b":")[0].lower() not in named]
        kept.append(b"")
        taken = self.reason, b"\r\n".join(kept)[1:], self.length, self.chunked
        self.reason = b""
        self.length = None
        self.chunked = False
        return taken


def block_fields(block: bytes) -> Headers:
    """The fields of a header block, names lower-cased."""
    fields: Headers = []
    for line in block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip()
        if name:
            fields.append((name.lower(), value.strip()))
    return fields


def field_lines(headers: Headers) -> bytes:
    """`Name: value\\r\\n` lines (joined in C: no Python-level loop per field)."""
    return b"\r\n".join(map(b": ".join, headers)) + b"\r\n" if headers else b""


def origin_form(target: bytes) -> tuple[bytes, bytes | None]:
    """(origin-form target, authority) of a request target: an absolute-form one
    (`http://host/path?q`) is split — RFC 9112 3.2.2: its authority is the request's host,
    whatever the Host header says —, an origin-form one (`/path`) is kept as is."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return target, None
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return (path if path.startswith(b"/") else b"/" + path), rest[:cut].rpartition(b"@")[2]
