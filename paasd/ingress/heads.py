"""Header blocks as the ingress passes them on: hop-by-hop fields cut out of raw bytes.

A response head from an HTTP/1.1 instance is relayed as the block of bytes it
came in (`Name: value\\r\\n` lines), minus the hop-by-hop fields, the ones its
`Connection` names and the framing (Content-Length and Transfer-Encoding are
set again by whoever frames the body): one scan in C instead of a callback and
a tuple per field. HTTP/2 wants a list; `block_fields` makes one.
"""

from __future__ import annotations

import os
import re

Headers = list[tuple[bytes, bytes]]

# X-Request-Id: random per process, then a counter (unique, and cheaper than uuid4)
REQUEST_ID_PREFIX = os.urandom(10).hex().encode()

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection",
    b"http2-settings",
})

# every field line the relay cuts from a response head (name, value up to its CR), found
# and removed in case-insensitive C scans: `findall` reads the values, `sub` cuts the lines
_CUT = re.compile(rb"\n(content-length|connection|transfer-encoding|keep-alive|proxy-[a-z]+|"
                  rb"te|trailers?|upgrade|http2-settings)[ \t]*:([^\n]*)(?=\n)", re.I)


def response_block(block: bytes) -> tuple[bytes, int | None, bool]:
    """(the block without hop-by-hop and framing fields, Content-Length, chunked).

    `block` starts with the LF that ends the status line and ends with a CRLF:
    every field follows an LF and is followed by one."""
    found = _CUT.findall(block)
    if not found:
        return block, None, False
    length: int | None = None
    chunked = False
    named: set[bytes] = set()
    for name, value in found:
        name = name.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            value = value.strip().lower()
            if value != b"keep-alive" and value != b"close":  # it names fields to drop
                named |= {t.strip() for t in value.split(b",")} - {b"close", b"keep-alive"}
        elif name == b"transfer-encoding":
            chunked = True
    out = _CUT.sub(b"", block)
    if named:
        out = b"".join([line + b"\r\n" for line in out.split(b"\r\n")[:-1]
                        if line.partition(b":")[0].strip().lower() not in named])
    return out, length, chunked


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


# Headers a `Connection:` list may not remove: the proxy needs them end to end (and
# `close`/`keep-alive`/`upgrade` are the connection's own options, not field names).
KEPT_END_TO_END = frozenset({b"close", b"keep-alive", b"upgrade", b"host", b"content-length",
                             b"transfer-encoding"})


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
