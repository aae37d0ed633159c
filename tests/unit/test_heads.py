"""Response heads relayed as a block of kept fields: hop-by-hop and framing fields dropped."""

from __future__ import annotations

from paasd.ingress.heads import ResponseHead, block_fields, field_lines


def _take(block: bytes) -> tuple[bytes, int | None, bool]:
    """Feed a raw block's fields to a ResponseHead as llhttp reports them (split, trimmed)."""
    head = ResponseHead()
    for line in block.split(b"\r\n")[:-1]:
        name, _, value = line.lstrip(b"\n").partition(b":")
        head.field(name, value.strip())
    return head.take()[1:]


def test_framing_and_hop_by_hop_fields_are_cut_and_reported() -> None:
    block = (b"\nServer: nginx\r\nContent-Length: 6\r\nConnection: keep-alive, X-Private\r\n"
             b"X-Private: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: 2\r\nTrailer: a\r\n"
             b"Upgrade: h2c\r\nProxy-Authenticate: x\r\nTE: trailers\r\n")
    assert _take(block) == (b"\nServer: nginx\r\nX-Kept: 2\r\n", 6, False)


def test_a_field_named_by_connection_is_dropped_wherever_it_comes() -> None:
    block = b"\nX-Before: 1\r\nConnection: x-before, X-After\r\nX-After: 2\r\nX-Other: 3\r\n"
    assert _take(block) == (b"\nX-Other: 3\r\n", None, False)


def test_chunked_and_plain_blocks() -> None:
    assert _take(b"\nTransfer-Encoding: chunked\r\nX-A: b\r\n") == (b"\nX-A: b\r\n", None, True)
    plain = b"\nServer: x\r\nContent-Type: text/plain\r\n"
    assert _take(plain) == (plain, None, False)
    assert ResponseHead().take() == (b"", b"\n", None, False)  # no fields at all


def test_take_starts_over_for_the_next_head() -> None:
    head = ResponseHead()
    head.status(b"Early Hints")
    head.field(b"Link", b"</a.css>; rel=preload")
    head.field(b"Connection", b"x-a")
    head.take()  # a 103 Early Hints: not relayed
    head.field(b"Content-Length", b"3")
    head.field(b"Transfer-Encoding", b"chunked")
    head.field(b"X-A", b"kept: the Connection that named it was the 103's")
    assert head.take()[1:] == (b"\nX-A: kept: the Connection that named it was the 103's\r\n",
                           3, True)
    assert head.take() == (b"", b"\n", None, False)  # (llhttp reports no empty reason)


def test_fields_round_trip() -> None:
    fields = block_fields(b"\nServer: nginx\r\nX-A:  b \r\n")
    assert fields == [(b"server", b"nginx"), (b"x-a", b"b")]
    assert field_lines(fields) == b"server: nginx\r\nx-a: b\r\n"


def test_cut_names_are_whole_field_names_in_any_case() -> None:
    block = (b"\nCONTENT-LENGTH: 12\r\ncontent-type: text/plain\r\nTeapot: yes\r\n"
             b"Trailers-X: kept\r\nProxy-Connection: close\r\nconnection: Close\r\n"
             b"Upgrade-Insecure-Requests: 1\r\nTE: trailers\r\n")
    out, length, chunked = _take(block)
    assert length == 12 and not chunked
    assert out == (b"\ncontent-type: text/plain\r\nTeapot: yes\r\nTrailers-X: kept\r\n"
                   b"Upgrade-Insecure-Requests: 1\r\n")
    assert field_lines([]) == b""
