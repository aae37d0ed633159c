"""Knative's sample Services with parts replaced by values of the wrong shape: each is
accepted (and then everything that reads a spec — warnings, export, references, the
docker options, what a process takes of a securityContext, the probes' plans — copes)
or refused with `InvalidSpec`; nothing else is ever raised."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from paasd.configdata.resolve import Context, Unresolved, environment, missing, volume_files
from paasd.errors import InvalidSpec
from paasd.runtime.docker.options import container_options, security_warnings, spec_problems_of
from paasd.runtime.local.probes import plan
from paasd.runtime.process.identity import identity_warnings
from paasd.spec.fields import ACCEPT_ALL, spec_warnings
from paasd.spec.hpapolicy import hpa_policy
from paasd.spec.knative import service_from_document, service_to_document
from paasd.spec.yamlpos import Located
from tests.knative.samples import SAMPLES

DOCS = [yaml.safe_load(p.read_text()) for p in SAMPLES]
ODD = st.sampled_from([None, 0, -1, 1.5, True, "", "x", [], {}, [None], {"a": None}, [{}],
                       "0", "-1", "${X}", {"name": 1}, [1, 2], {"type": 3}, "Memory"])


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at] if at else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*at, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        where = paths(doc)
        if not where:
            break
        path = draw(st.sampled_from(where))
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(draw(ODD))
    return doc


@given(mutated())
def test_a_mutated_sample_is_accepted_and_read_or_refused(doc: Any) -> None:
    try:
        spec = service_from_document(Located(doc), ACCEPT_ALL, notes=[])
    except InvalidSpec:
        return
    spec_warnings(spec, ACCEPT_ALL)
    service_to_document(spec)
    t = spec.template
    nothing = Context(spec.namespace, "x", lambda *a: None)
    missing(t, spec.namespace, lambda *a: None)
    spec_problems_of(t)
    security_warnings(spec)
    identity_warnings(spec)
    hpa_policy(t)
    for c in (*t.init_containers, *t.containers):
        container_options(t, c, {v.name: v.name for v in t.pod.volumes})
        for probe in (c.readiness_probe, c.liveness_probe, c.startup_probe):
            if probe is not None:
                plan(probe)
        with contextlib.suppress(Unresolved):
            environment(c, nothing)
    for v in t.pod.volumes:
        with contextlib.suppress(Unresolved):
            volume_files(v, nothing)
