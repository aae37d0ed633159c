"""Response header blocks relayed as raw bytes: hop-by-hop and framing fields cut out."""

from __future__ import annotations

from paasd.ingress.heads import block_fields, field_lines, response_block


def test_framing_and_hop_by_hop_fields_are_cut_and_reported() -> None:
    block = (b"\nServer: nginx\r\nContent-Length: 6\r\nConnection: keep-alive, X-Private\r\n"
             b"X-Private: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: 2\r\nTrailer: a\r\n"
             b"Upgrade: h2c\r\nProxy-Authenticate: x\r\nTE: trailers\r\n")
    out, length, chunked = response_block(block)
    assert (out, length, chunked) == (b"\nServer: nginx\r\nX-Kept: 2\r\n", 6, False)


def test_chunked_and_plain_blocks() -> None:
    out, length, chunked = response_block(b"\nTransfer-Encoding: chunked\r\nX-A: b\r\n")
    assert (out, length, chunked) == (b"\nX-A: b\r\n", None, True)
    plain = b"\nServer: x\r\nContent-Type: text/plain\r\n"
    assert response_block(plain) == (plain, None, False)
    assert response_block(b"\n") == (b"\n", None, False)  # no fields at all


def test_fields_round_trip() -> None:
    fields = block_fields(b"\nServer: nginx\r\nX-A:  b \r\n")
    assert fields == [(b"server", b"nginx"), (b"x-a", b"b")]
    assert field_lines(fields) == b"server: nginx\r\nx-a: b\r\n"


def test_cut_names_are_whole_field_names_in_any_case() -> None:
    block = (b"\nCONTENT-LENGTH: 12\r\ncontent-type: text/plain\r\nTeapot: yes\r\n"
             b"Trailers-X: kept\r\nProxy-Connection: close\r\nconnection: Close\r\n"
             b"Upgrade-Insecure-Requests: 1\r\nTE : trailers\r\n")
    out, length, chunked = response_block(block)
    assert length == 12 and not chunked
    assert out == (b"\ncontent-type: text/plain\r\nTeapot: yes\r\nTrailers-X: kept\r\n"
                   b"Upgrade-Insecure-Requests: 1\r\n")
    assert field_lines([]) == b""
