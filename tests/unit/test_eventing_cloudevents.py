"""Reading CloudEvents off HTTP requests (the broker ingress): binary and structured
mode through the `cloudevents` package, and 400s that name what is missing."""

from __future__ import annotations

import json

import pytest

from paasd.eventing.broker import NotACloudEvent, read_cloudevent

BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t", "ce-source": "/s",
          "content-type": "application/json", "ce-team": "ops", "x-other": "dropped"}


def test_binary_mode_is_kept_byte_for_byte() -> None:
    headers, body = read_cloudevent(BINARY, b'{"a":  1}')
    assert body == b'{"a":  1}'
    assert headers == {k: v for k, v in BINARY.items() if k != "x-other"}


def test_binary_data_is_not_parsed() -> None:
    """Knative passes the data on as it came: an empty or non-JSON body is still an event."""
    for body in (b"", b"not json"):
        headers, got = read_cloudevent(BINARY, body)
        assert got == body and headers["content-type"] == "application/json"


def test_structured_mode_becomes_binary() -> None:
    doc = {"specversion": "1.0", "id": "2", "type": "t", "source": "/s", "team": "ops",
           "datacontenttype": "application/json", "data": {"a": 1}}
    headers, body = read_cloudevent({"Content-Type": "application/cloudevents+json"},
                                    json.dumps(doc).encode())
    assert headers["ce-id"] == "2" and headers["ce-team"] == "ops"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"a": 1}


@pytest.mark.parametrize(("headers", "body", "message"), [
    ({k: v for k, v in BINARY.items() if k != "ce-type"}, b"{}",
     "the required attribute 'type' is missing (header ce-type"),
    ({"content-type": "application/json"}, b"{}",
     "the required attribute 'specversion' is missing"),
    ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0"}',
     'the required attribute \'id\' is missing (the "id" field'),
    ({"content-type": "application/cloudevents+json"}, b"not json", "the body is not JSON"),
    ({**BINARY, "ce-specversion": "0.3"}, b"{}", "ce-specversion '0.3' is not supported"),
    ({**BINARY, "ce-team": "\u00e9quipe"}, b"{}", "header ce-team: non-ASCII"),
    ({"content-type": "application/cloudevents-batch+json"}, b"[]", "batched CloudEvents"),
])
def test_not_a_cloudevent(headers: dict[str, str], body: bytes, message: str) -> None:
    with pytest.raises(NotACloudEvent) as err:
        read_cloudevent(headers, body)
    assert message in str(err.value), str(err.value)
