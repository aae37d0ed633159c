"""Knative Service YAML → ServiceSpec, and the errors users see for bad documents."""

from __future__ import annotations

import pytest

from paasd.errors import InvalidSpec
from paasd.spec.knative import service_from_document, service_to_document
from paasd.spec.model import ServiceSpec
from paasd.spec.yamlpos import Located, load_documents

HELLO = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  namespace: demo
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "2"
    spec:
      containerConcurrency: 10
      timeoutSeconds: 30
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          command: ["python3", "app.py"]
          args: ["--verbose"]
          env:
            - name: TARGET
              value: World
          ports:
            - containerPort: 8080
          readinessProbe:
            httpGet:
              path: /healthz
"""


def parse(text: str) -> ServiceSpec:
    (doc,) = load_documents(text, "hello.yaml")
    return service_from_document(doc)


def error(text: str) -> str:
    with pytest.raises(InvalidSpec) as info:
        parse(text)
    return str(info.value)


def test_full_service_translates() -> None:
    spec = parse(HELLO)
    assert str(spec.key) == "demo/hello"
    c = spec.template.container
    assert c.image == "ghcr.io/knative/helloworld-go:latest"
    assert c.command == ("python3", "app.py") and c.args == ("--verbose",)
    assert [(e.name, e.value) for e in c.env] == [("TARGET", "World")]
    assert c.port == 8080
    assert c.readiness_probe is not None and c.readiness_probe.path == "/healthz"
    assert spec.template.container_concurrency == 10
    assert spec.template.timeout_seconds == 30
    assert spec.template.annotation("autoscaling.knative.dev/min-scale") == "2"


def test_v1alpha1_is_accepted_and_namespace_defaults() -> None:
    spec = parse(HELLO.replace("serving.knative.dev/v1", "serving.knative.dev/v1alpha1")
                 .replace("  namespace: demo\n", ""))
    assert spec.namespace == "default"


def test_unknown_field_names_file_line_field_and_suggestion() -> None:
    assert error(HELLO.replace("- image:", "- imag:")) == (
        'hello.yaml:15: spec.template.spec.containers[0].imag: unknown field "imag" '
        '(did you mean "image"?)')


def test_knative_field_paasd_does_not_support_is_named() -> None:
    text = HELLO.replace("          ports:", "          volumeMounts: []\n          ports:")
    assert "volumeMounts" in error(text) and "not supported by paasd" in error(text)


def test_not_a_service() -> None:
    message = error(HELLO.replace("kind: Service", "kind: Deployment"))
    assert message.startswith("hello.yaml:2: not a Knative Service")
    assert "'Deployment'" in message


def test_missing_name() -> None:
    assert "metadata.name is required" in error(HELLO.replace("  name: hello\n", ""))


@pytest.mark.parametrize("bad", ["Hello", "1hello", "hello-", "hel_lo", "a" * 64])
def test_invalid_dns_1035_name(bad: str) -> None:
    message = error(HELLO.replace("name: hello", f"name: {bad}"))
    assert message.startswith("hello.yaml:4: metadata.name:") and "DNS-1035" in message


def test_duplicate_port() -> None:
    text = HELLO.replace("            - containerPort: 8080\n",
                         "            - containerPort: 8080\n            - containerPort: 8080\n")
    assert "duplicate port 8080" in error(text)


def test_neither_image_nor_command() -> None:
    text = HELLO.replace("        - image: ghcr.io/knative/helloworld-go:latest\n"
                         "          command: [\"python3\", \"app.py\"]\n"
                         "          args:", "        - args:")
    assert "give the container an image" in error(text)


def test_min_scale_above_max_scale() -> None:
    text = HELLO.replace('min-scale: "2"', 'min-scale: "5"\n'
                         '        autoscaling.knative.dev/max-scale: "3"')
    assert "min-scale 5 is greater than max-scale 3" in error(text)


def test_annotation_values_must_be_strings() -> None:
    assert 'quote it: "2"' in error(HELLO.replace('"2"', "2"))


def test_revision_name_must_start_with_service_name() -> None:
    text = HELLO.replace("    metadata:\n      annotations:",
                         "    metadata:\n      name: other-v1\n      annotations:")
    assert "must start with 'hello-'" in error(text)


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(InvalidSpec, match=r"^x.yaml:3: not valid YAML"):
        load_documents("a: 1\nb: [1,\nc: }\n", "x.yaml")


def test_multi_document_stream() -> None:
    docs = load_documents(HELLO + "---\n" + HELLO.replace("name: hello", "name: bye"), "f")
    assert [service_from_document(d).name for d in docs] == ["hello", "bye"]


def test_export_round_trip_is_identity() -> None:
    spec = parse(HELLO)
    again = service_from_document(Located(service_to_document(spec)))
    assert again == spec
    assert again.template.digest() == spec.template.digest()


def test_exported_document_is_knative_v1() -> None:
    doc = service_to_document(parse(HELLO))
    assert doc["apiVersion"] == "serving.knative.dev/v1" and doc["kind"] == "Service"
    container = doc["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 8080}]
    assert container["readinessProbe"] == {"httpGet": {"path": "/healthz"}}


def test_timeouts_and_the_h2c_port_name_are_kept_and_exported() -> None:
    spec = parse("""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: grpc
spec:
  template:
    spec:
      timeoutSeconds: 20
      responseStartTimeoutSeconds: 5
      idleTimeoutSeconds: 3
      containers:
        - command: ["app"]
          ports:
            - name: h2c
              containerPort: 8080
""")
    t = spec.template
    assert (t.timeout_seconds, t.response_start_timeout_seconds, t.idle_timeout_seconds) == \
        (20, 5, 3)
    assert t.container.port_name == "h2c" and t.container.protocol == "h2c"
    out = service_to_document(spec)["spec"]["template"]["spec"]
    assert out["responseStartTimeoutSeconds"] == 5 and out["idleTimeoutSeconds"] == 3
    assert out["containers"][0]["ports"] == [{"name": "h2c", "containerPort": 8080}]


def test_unset_new_fields_leave_the_template_digest_as_it_was() -> None:
    """Revisions made before timeouts, port names and the extended Knative fields were
    kept keep their digests: the literal is what the first release computed."""
    from paasd.spec.model import Container, Template

    assert Template(container=Container(command=("x",))).digest() == "f1cbb74e7439772c"
