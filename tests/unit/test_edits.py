"""`paasctl service create|update` flags as edits of the Knative document (kn's syntax)."""

from __future__ import annotations

import pytest

from paasd.client.edits import EditError, edit_template, edit_traffic, new_service


def doc_with(traffic: list[dict[str, object]] | None = None) -> dict[str, object]:
    doc = edit_template(new_service("hello", "default"), cmd=["app"])
    if traffic is not None:
        doc["spec"]["traffic"] = traffic  # type: ignore[index]
    return doc


def test_traffic_split_in_kn_syntax() -> None:
    out = edit_traffic(doc_with(), ["hello-00001=90,@latest=10"], [], [])
    assert out["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 10},
        {"revisionName": "hello-00001", "latestRevision": False, "percent": 90}]


def test_tag_and_untag() -> None:
    out = edit_traffic(doc_with(), [], ["hello-00002=green"], [])
    assert {"revisionName": "hello-00002", "latestRevision": False, "percent": 0,
            "tag": "green"} in out["spec"]["traffic"]
    back = edit_traffic(out, [], [], ["green"])
    assert back["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    with pytest.raises(EditError, match="no traffic target has the tag 'blue'"):
        edit_traffic(out, [], [], ["blue"])


def test_traffic_by_tag_name() -> None:
    start = doc_with([{"revisionName": "hello-00001", "percent": 100, "tag": "blue"}])
    out = edit_traffic(start, ["blue=50,@latest=50"], [], [])
    assert sorted((t.get("tag", ""), t["percent"]) for t in out["spec"]["traffic"]) == [
        ("", 50), ("blue", 50)]


def test_bad_pairs_say_the_form() -> None:
    with pytest.raises(EditError, match="use KEY=VALUE"):
        edit_traffic(doc_with(), ["hello-00001"], [], [])
    with pytest.raises(EditError, match="whole number"):
        edit_traffic(doc_with(), ["@latest=lots"], [], [])


def test_template_edits() -> None:
    doc = edit_template(doc_with(), env=["TARGET=x", "DEBUG=1"], scale_min=2,
                        concurrency_limit=5, revision_name="blue")
    doc = edit_template(doc, env=["DEBUG-"])
    t = doc["spec"]["template"]
    assert t["spec"]["containers"][0]["env"] == [{"name": "TARGET", "value": "x"}]
    assert t["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "2"
    assert t["metadata"]["name"] == "hello-blue"
    assert t["spec"]["containerConcurrency"] == 5
