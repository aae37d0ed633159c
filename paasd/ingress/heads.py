"""Header blocks as the ingress passes them on: hop-by-hop fields cut out of raw bytes.

A response head from an HTTP/1.1 instance is relayed as the block of bytes it
came in (`Name: value\\r\\n` lines), minus the hop-by-hop fields, the ones its
`Connection` names and the framing (Content-Length and Transfer-Encoding are
set again by whoever frames the body): one scan in C instead of a callback and
a tuple per field. HTTP/2 wants a list; `block_fields` makes one.
"""

from __future__ import annotations

import re

Headers = list[tuple[bytes, bytes]]

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
    length: int | None = None
    chunked = False
    cuts: list[tuple[int, int]] = []
    named: set[bytes] = set()
    i = lower.find(b"\ncontent-length:")
    if i != -1:
        end = lower.find(b"\n", i + 16)
        length = int(block[i + 16:end])
        cuts.append((i + 1, end + 1))
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
    if b"\nk" in lower or b"\np" in lower or b"\nt" in lower or b"\nu" in lower \
            or b"\nh" in lower:  # the rare ones start with these: look closer
        for m in _RARE.finditer(lower):
            cuts.append((m.start() + 1, lower.find(b"\n", m.end()) + 1))
    if not cuts:
        return block, None, False
    if len(cuts) > 1:
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
