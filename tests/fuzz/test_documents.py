"""The Knative document parser and the config parser on arbitrary input: every input is
either accepted (and then round-trips) or refused with an `InvalidSpec`/`ConfigError` that
names where — never another exception."""

from __future__ import annotations

import re
from typing import Any

import tomlkit
from hypothesis import given
from hypothesis import strategies as st

from paasd.config import parse_config
from paasd.errors import ConfigError, InvalidSpec
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.knative import service_from_document, service_to_document
from paasd.spec.yamlpos import Located, load_documents

RUNTIMES = schemas(BUILTIN)

names = st.sampled_from(["hello", "a", "x-1", "Bad_Name", "", "é", "a" * 70, "1a"])
text = st.one_of(names, st.text(max_size=12), st.sampled_from(["\x00", "1e400", "-1", "5s"]))
scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12),
                   st.floats(allow_nan=True), text)
anything = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=12)

KNOWN = ["image", "command", "args", "env", "ports", "workingDir", "readinessProbe",
         "name", "resources", "livenessProbe"]
container = st.dictionaries(st.sampled_from(KNOWN), anything, max_size=5)
annotations = st.dictionaries(st.sampled_from([
    "autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/max-scale",
    "autoscaling.knative.dev/target", "autoscaling.knative.dev/window",
    "autoscaling.knative.dev/initial-scale", "serving.knative.dev/rollout-duration",
    "autoscaling.knative.dev/metric", "anything/else"]), text, max_size=4)
traffic = st.lists(st.dictionaries(st.sampled_from(
    ["latestRevision", "revisionName", "percent", "tag"]), anything, max_size=4), max_size=3)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Knative-shaped documents, mostly almost right (that is where parsers break)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(anything)
    template: dict[str, Any] = {"spec": {"containers": draw(st.lists(container, max_size=2))}}
    if draw(st.booleans()):
        template["metadata"] = {"annotations": draw(annotations)}
    if draw(st.booleans()):
        template["spec"]["containerConcurrency"] = draw(scalar)
    doc: dict[str, Any] = {
        "apiVersion": draw(st.sampled_from(["serving.knative.dev/v1", "v1", "x"])),
        "kind": draw(st.sampled_from(["Service", "Service", "Route"])),
        "metadata": {"name": draw(names), "namespace": draw(st.sampled_from(
            ["default", "ns-1", "Bad NS"]))},
        "spec": {"template": template},
    }
    if draw(st.booleans()):
        doc["spec"]["traffic"] = draw(traffic)
    if draw(st.booleans()):
        doc[draw(text)] = draw(anything)
    return doc


WHERE = re.compile(r"^\S+:\d+: ")  # file:line: first


@given(documents())
def test_a_document_is_accepted_and_round_trips_or_refused_with_its_place(doc: Any) -> None:
    try:
        spec = service_from_document(Located(doc, source="f.yaml"))
    except InvalidSpec as exc:
        assert WHERE.match(str(exc)), str(exc)
        return
    again = service_from_document(Located(service_to_document(spec), source="export"))
    assert again == spec


@given(st.text(max_size=300))
def test_any_yaml_text_is_loaded_or_refused_with_its_place(source: str) -> None:
    try:
        docs = load_documents(source, "f.yaml")
    except InvalidSpec as exc:
        assert str(exc).startswith("f.yaml"), str(exc)
        return
    for doc in docs:
        try:
            service_from_document(doc)
        except InvalidSpec as exc:
            assert str(exc).startswith("f.yaml"), str(exc)


SECTIONS = {
    "daemon": ["runtime", "socket", "state_dir", "shutdown_grace", "runtme"],
    "ingress": ["listen", "domain"],
    "process": ["start_timeout", "stop_grace", "working_dir"],
    "autoscaler": ["stable_window", "initial_scale", "max_scale_up_rate", "min_scale"],
    "metrics": ["enabled", "listen"],
    "traffic": ["rollout_duration"],
    "nonsense": ["x"],
}
toml_value = st.one_of(st.booleans(), st.integers(-10**20, 10**20),
                       st.floats(allow_nan=False), text.filter(lambda t: "\x00" not in t),
                       st.lists(st.integers(), max_size=3))


@st.composite
def configs(draw: st.DrawFn) -> str:
    doc = tomlkit.document()
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4, unique=True)):
        table = tomlkit.table()
        for key in draw(st.lists(st.sampled_from(SECTIONS[section]), max_size=3,
                                 unique=True)):
            table[key] = draw(toml_value)
        doc[section] = table
    services = tomlkit.aot()
    for _ in range(draw(st.integers(0, 2))):
        svc = tomlkit.table()
        for key in draw(st.lists(st.sampled_from(
                ["name", "command", "image", "env", "min_scale", "port", "annotations"]),
                max_size=4, unique=True)):
            svc[key] = draw(st.one_of(toml_value, st.dictionaries(
                st.sampled_from(["A", "B=C", ""]), st.text(max_size=3).filter(
                    lambda t: "\x00" not in t), max_size=2)))
        services.append(svc)
    if services:
        doc["service"] = services
    return tomlkit.dumps(doc)


@given(configs())
def test_a_config_is_accepted_or_refused_with_file_line_and_field(text: str) -> None:
    try:
        parse_config(text, "/etc/paasd/paasd.toml", runtimes=RUNTIMES)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith("/etc/paasd/paasd.toml"), problem
