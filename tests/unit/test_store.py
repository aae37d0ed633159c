"""The store: revisions are immutable and numbered; state survives reopening."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from paasd.errors import Conflict, InvalidSpec, NotFound
from paasd.spec.model import Container, ServiceSpec, Template
from paasd.store import Store


def spec(name: str = "hello", target: str = "World", **template: object) -> ServiceSpec:
    from paasd.spec.model import EnvVar

    return ServiceSpec(name=name, namespace="default", template=Template(
        container=Container(command=("python3", "app.py"), env=(EnvVar("TARGET", target),)),
        **template))  # type: ignore[arg-type]


def test_apply_create_unchanged_configured(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = store.apply(spec(), "api", now=1)
    assert first.outcome == "created"
    assert first.revision is not None and first.revision.name == "hello-00001"
    assert store.apply(spec(), "api", now=2).outcome == "unchanged"
    labelled = dataclasses.replace(spec(), labels=(("team", "a"),))
    result = store.apply(labelled, "api", now=3)
    assert (result.outcome, result.revision) == ("configured", None)  # no template change
    changed = store.apply(spec(target="paasd"), "api", now=4)
    assert changed.outcome == "configured"
    assert changed.revision is not None and changed.revision.name == "hello-00002"
    assert [r.name for r in store.revisions()] == ["hello-00001", "hello-00002"]


def test_state_survives_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.apply(spec(), "api")
    store.apply(spec(target="x"), "api")
    store.close()
    again = Store(tmp_path)
    (svc,) = again.services()
    assert svc.spec == spec(target="x") and svc.generation == 2
    assert [r.template for r in again.revisions()] == [spec().template, spec(target="x").template]


def test_user_named_revision_is_immutable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.apply(dataclasses.replace(spec(), template=dataclasses.replace(
        spec().template, name="hello-blue")), "api")
    clash = dataclasses.replace(spec(target="b"), template=dataclasses.replace(
        spec(target="b").template, name="hello-blue"))
    with pytest.raises(InvalidSpec, match="already exists"):
        store.apply(clash, "api")
    assert [r.name for r in store.revisions()] == ["hello-blue"]
    assert store.services()[0].spec.template.container.env[0].value == "World"


def test_config_owned_service_is_not_changed_through_the_api(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.apply(spec(), "config")
    with pytest.raises(Conflict, match=r"paasd\.toml"):
        store.apply(spec(target="x"), "api")
    with pytest.raises(Conflict):
        store.delete("default", "hello", source="api")
    assert store.services()[0].spec == spec()


def test_delete_removes_revisions(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.apply(spec(), "api")
    store.delete("default", "hello", source="api")
    assert store.services() == [] and store.revisions() == []
    with pytest.raises(NotFound, match="paasctl service list"):
        store.delete("default", "hello")


def test_a_template_keeps_its_digest_across_upgrades() -> None:
    """Fields added after the first release count only when set: re-applying a stored
    spec after an upgrade must not make a new revision. The literal is what paasd 0.1.0's
    first release computed for this template."""
    from paasd.spec.model import Container, EnvVar, Probe, Template

    t = Template(container=Container(command=("python3", "app.py"),
                                     env=(EnvVar("TARGET", "World"),),
                                     readiness_probe=Probe(path="/")))
    assert t.digest() == "f953ac2592634ef5"
