"""Broker, Trigger and PingSource documents: strict parsing with file:line, export,
and exports that Knative Eventing's own CRD schemas accept (unknown fields are errors)."""

from __future__ import annotations

import pytest

from paasd.errors import InvalidSpec
from paasd.eventing.objects import KINDS, iso_duration, next_fire
from paasd.spec.objects import ObjectKey
from paasd.spec.yamlpos import load_documents
from tests.knative_schema import EVENTING_CRDS, crd_schema, validate

ALL = """\
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: demo, annotations: {eventing.knative.dev/broker.class: X}}
spec:
  delivery:
    retry: 3
    backoffPolicy: exponential
    backoffDelay: PT0.2S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dead}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: orders, namespace: demo}
spec:
  broker: default
  filter: {attributes: {type: order.created, source: shop}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: billing}}
  delivery: {retry: 2, backoffPolicy: linear, backoffDelay: PT1S, timeout: PT5S,
             deadLetterSink: {uri: "http://127.0.0.1:9999/dead"}}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: tick, namespace: demo}
spec:
  schedule: "*/2 * * * *"
  timezone: Europe/Paris
  contentType: application/json
  data: '{"hello": "world"}'
  ceOverrides: {extensions: {team: ops}}
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
"""

CONTAINER = """\
apiVersion: sources.knative.dev/v1
kind: ContainerSource
metadata: {name: beat, namespace: demo}
spec:
  template:
    spec:
      containers:
        - image: paasd.local/demo/beat:1
          env: [{name: PERIOD, value: "1"}]
  ceOverrides: {extensions: {team: ops}}
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
"""
BINDING = """\
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata: {name: bind, namespace: demo}
spec:
  subject: {apiVersion: serving.knative.dev/v1, kind: Service, name: emitter}
  sink: {uri: "http://127.0.0.1:9000/in"}
  ceOverrides: {extensions: {team: ops}}
"""
CRDS = {"SinkBinding": "sinkbindings-crd.yaml",
        "Broker": "broker-crd.yaml", "Trigger": "trigger-crd.yaml",
        "PingSource": "pingsource-crd.yaml", "ContainerSource": "containersource-crd.yaml"}


def parse_all(text: str, source: str = "e.yaml") -> list[tuple[ObjectKey, object]]:
    out = []
    for doc in load_documents(text, source):
        kind = KINDS[(doc.value["apiVersion"], doc.value["kind"])]
        ns, name, body = kind.parse(doc)
        out.append((ObjectKey(kind.kind, ns, name), body))
    return out


def test_export_validates_against_knative_crds_and_round_trips() -> None:
    for key, body in parse_all(ALL + "---\n" + CONTAINER + "---\n" + BINDING):
        kind = next(k for k in KINDS.values() if k.kind == key.kind)
        doc = kind.export(key, body)
        schema = crd_schema(EVENTING_CRDS / CRDS[key.kind])
        # Kubernetes itself declares apiVersion, kind and metadata; the CRD the rest
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
        assert validate(doc["spec"], schema["properties"]["spec"], "spec") == [], key
        # export → apply: the same value; the stored form reads back the same
        from paasd.spec.yamlpos import Located
        assert kind.parse(Located(doc)) == (key.namespace, key.name, body)
        # as the hub loads it: decoded, then exported under its key and parsed again
        stored = kind.from_json(kind.to_json(body))
        assert kind.parse(Located(kind.export(key, stored)))[2] == body


@pytest.mark.parametrize(("patch", "message"), [
    (("schedule: \"*/2 * * * *\"", "schedule: \"every minute\""),
     "e.yaml:25: spec.schedule: 'every minute' is not a cron expression"),
    (("timezone: Europe/Paris", "timezone: Mars/Olympus"),
     "e.yaml:26: spec.timezone: 'Mars/Olympus' is not a known time zone"),
    (("source: shop}", "source: 7}"),
     "e.yaml:16: spec.filter.attributes.source: must be a string; quote it"),
    (("name: billing}", "name: billing, namespace: other}"),
     "e.yaml:17: spec.subscriber.ref.namespace: a sink in another namespace ('other')"),
    (("backoffDelay: PT1S", "backoffDelay: 1s"),
     "e.yaml:18: spec.delivery.backoffDelay: '1s' is not an ISO-8601 duration"),
    (("backoffPolicy: linear", "backoffPolicy: random"),
     "e.yaml:18: spec.delivery.backoffPolicy: must be linear or exponential"),
    (("  broker: default", "  brokr: default"),
     'e.yaml:15: spec.brokr: unknown field "brokr"'),
    (("uri: \"http://127.0.0.1:9999/dead\"", "uri: \"http://example.org/dead\""),
     "e.yaml:19: spec.delivery.deadLetterSink.uri: 'example.org' is not on this machine"),
])
def test_bad_input_is_refused_with_the_field_and_line(patch: tuple[str, str],
                                                      message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_all(ALL.replace(*patch))
    assert str(err.value).startswith(message), str(err.value)


def test_iso_durations_and_schedules_in_time_zones() -> None:
    assert iso_duration("PT0.5S") == 0.5
    assert iso_duration("P1DT1H1M1S") == 90061
    with pytest.raises(ValueError):
        iso_duration("PT")
    # 2026-01-01 00:00:30 UTC: "0 9 * * *" in Paris (UTC+1 in winter) is 08:00 UTC
    after = 1767225630.0
    assert next_fire("0 9 * * *", "Europe/Paris", after) == 1767225600.0 + 8 * 3600
    assert next_fire("0 9 * * *", None, after) == 1767225600.0 + 9 * 3600
    assert next_fire("* * * * *", None, after) == 1767225660.0


def test_a_container_sources_template_is_checked_as_a_services() -> None:
    [(_key, body)] = parse_all(CONTAINER)
    assert body.service.name == "beat-deployment" and body.service.namespace == "demo"
    with pytest.raises(InvalidSpec) as err:
        parse_all(CONTAINER.replace("env: [", "envv: ["))
    assert str(err.value).startswith('e.yaml:9: spec.template.spec.containers[0].envv: '
                                     'unknown field "envv"'), str(err.value)


def test_a_sink_binding_binds_a_service_of_its_namespace_by_name() -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_all(BINDING.replace("name: emitter}", "selector: {matchLabels: {a: b}}}"))
    assert "e.yaml:5: spec.subject.selector" in str(err.value)
    with pytest.raises(InvalidSpec) as err:
        parse_all(BINDING.replace("name: emitter}", "name: emitter, namespace: prod}"))
    assert "e.yaml:5: spec.subject.namespace: a subject in another namespace" in str(err.value)
