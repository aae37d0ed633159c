"""The control API on arbitrary JSON bodies and query strings: a real daemon answers every
one with a 2xx or a 4xx that says what was wrong — never a 500, never a dead daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.conftest import Daemon

pytestmark = pytest.mark.integration

scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
anything = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=10)
bodies = st.one_of(anything.map(lambda v: json.dumps(v).encode()),
                   st.binary(max_size=64), st.sampled_from([b"[" * 5000 + b"]" * 5000,
                                                            b"{" * 300, b"\x00\xff"]))

ENDPOINTS = [
    ("POST", "/v1/apply"),
    ("POST", "/v1/namespaces/default/services/hello/rollback"),
    ("POST", "/v1/namespaces/default/services/hello/builds"),
    ("POST", "/v1/namespaces/default/services/hello/git"),
    ("POST", "/v1/builds/dockerfile"),
    ("POST", "/v1/config/check"),
    ("GET", "/v1/namespaces/default/services/hello/logs"),
    ("GET", "/v1/revisions"),
    ("GET", "/v1/services"),
]
queries = st.dictionaries(st.sampled_from(["tail", "follow", "namespace", "service", "active",
                                           "filename"]),
                          st.text(max_size=6), max_size=2)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(Path(tmp_path_factory.mktemp("fuzz-api")))
    d.start()
    d.apply(d.hello())
    yield d
    d.stop()
    for pid in d.app_pids():
        import os
        import signal
        os.kill(pid, signal.SIGKILL)


@given(endpoint=st.sampled_from(ENDPOINTS), body=bodies, query=queries,
       json_type=st.booleans())
def test_no_body_gets_a_500(daemon: Daemon, endpoint: tuple[str, str], body: bytes,
                            query: dict[str, Any], json_type: bool) -> None:
    method, path = endpoint
    if path.endswith("/logs"):
        query.pop("follow", None)  # a followed log never ends
    headers = {"content-type": "application/json"} if json_type else {}
    r = daemon.api(method, path, content=body if method == "POST" else None,
                   params=query, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:  # an error body, or a config check's list of problems
        answer = r.json()
        assert answer.get("error", {}).get("message") or answer.get("problems"), answer
