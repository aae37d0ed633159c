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

# hop-by-hop fields other than Connection and the framing ones: rare in responses
_RARE = re.compile(rb"\n(?:keep-alive|proxy-[a-z]+|te|trailers?|upgrade|http2-settings)[ \t]*:")


def response_block(block: bytes) -> tuple[bytes, int | None, bool]:
    """(the block without hop-by-hop and framing fields, Content-Length, chunked).

    `block` starts with the LF that ends the status line: every field follows an LF."""
    lower = block.lower()
    i = lower.find(b"\ncontent-length:")
    j = lower.find(b"\nconnection:")
    if (lower.find(b"\ntransfer-encoding:") == -1 and
            (i == -1 or lower.find(b"\ncontent-length:", i + 16) == -1) and
            (j == -1 or lower.find(b"\nconnection:", j + 12) == -1) and not (
                b"\nk" in lower or b"\np" in lower or b"\nt" in lower or b"\nu" in lower
                or b"\nh" in lower)):
        # the common answer: at most one Content-Length and one Connection, nothing rarer
        length = None
        if i != -1:
            ie = lower.find(b"\n", i + 16) + 1
            length = int(block[i + 16:ie])
        if j != -1:
            je = lower.find(b"\n", j + 12) + 1
            value = lower[j + 12:je].strip()
            if value != b"keep-alive" and value != b"close":
                return _response_block(block, lower)  # it names fields to drop
            if i != -1:
                if i < j:
                    return block[:i + 1] + block[ie:j + 1] + block[je:], length, False
                return block[:j + 1] + block[je:i + 1] + block[ie:], length, False
            return block[:j + 1] + block[je:], None, False
        if i != -1:
            return block[:i + 1] + block[ie:], length, False
        return block, None, False
    return _response_block(block, lower)


def _response_block(block: bytes, lower: bytes) -> tuple[bytes, int | None, bool]:
    length: int | None = None
    chunked = False
    cuts: list[tuple[int, int]] = []
    named: set[bytes] = set()
    i = lower.find(b"\ncontent-length:")
    while i != -1:
        end = lower.find(b"\n", i + 16)
        length = int(block[i + 16:end])
        cuts.append((i + 1, end + 1))
        i = lower.find(b"\ncontent-length:", end)
    i = lower.find(b"\nconnection:")
    while i != -1:
        end = lower.find(b"\n", i + 12)
        value = lower[i + 12:end].strip()
        if value != b"keep-alive" and value != b"close":
            named |= {t.strip() for t in value.split(b",")} - {b"close", b"keep-alive"}
        cuts.append((i + 1, end + 1))
        i = lower.find(b"\nconnection:", end)
    i = lower.find(b"\ntransfer-encoding:")
    while i != -1:
        chunked = True
        end = lower.find(b"\n", i + 19)
        cuts.append((i + 1, end + 1))
        i = lower.find(b"\ntransfer-encoding:", end)
    for m in _RARE.finditer(lower):
        cuts.append((m.start() + 1, lower.find(b"\n", m.end()) + 1))
    if not cuts:
        return block, None, False
    cuts.sort()
    pieces = []
    last = 0
    for start, end in cuts:
        pieces.append(block[last:start])
        last = end
    pieces.append(block[last:])
    out = b"".join(pieces)
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
    return b"".join([name + b": " + value + b"\r\n" for name, value in headers])


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
