"""Issue 16's pure parts: image references, Knative annotations (aliases, unknown, warned),
every problem at once, read-only metadata notes, Secrets and ConfigMaps (parse, redact,
resolve), the docker options a container's fields become, and the sample checker."""

from __future__ import annotations

import pytest
import yaml

from paasd.configdata.kinds import CONFIGMAP, SECRET
from paasd.configdata.resolve import Context, Unresolved, environment, missing, volume_files
from paasd.errors import InvalidSpec
from paasd.runtime.docker.options import container_options, quantity, registry_auth
from paasd.spec.fields import ACCEPT_ALL, spec_warnings
from paasd.spec.imageref import image_reference_problem
from paasd.spec.knative import service_from_document, service_to_document
from paasd.spec.objects import ObjectKey
from paasd.spec.yamlpos import Located, load_documents
from tests.knative.samples import SAMPLES, dropped


@pytest.mark.parametrize("image", [
    "nginx", "docker.io/library/nginx:1.25", "gcr.io/knative-samples/helloworld-go",
    "localhost:5000/app@sha256:" + "a" * 64, "ko.local/knative.dev/serving/test/x:latest",
    "registry.example.com:8443/team/app_v2.1:v1.2-rc.3",
])
def test_valid_image_references(image: str) -> None:
    assert image_reference_problem(image) is None


@pytest.mark.parametrize(("image", "words"), [
    ("${REPO}/app", "placeholder"), ("My/App", "lowercase"), ("app:", "the tag ''"),
    ("app@sha256:xyz", "the digest"), ("a b", "white space"), ("", "must not be empty"),
    ("<image>", "placeholder"),
])
def test_invalid_image_references_name_the_rule(image: str, words: str) -> None:
    problem = image_reference_problem(image)
    assert problem is not None and words in problem


def parse(text: str, notes: list[str] | None = None) -> object:
    return service_from_document(load_documents(text, "svc.yaml")[0], ACCEPT_ALL, notes=notes)


BASE = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
{notes}    spec:
      containers:
        - image: {image}
"""


def test_every_problem_is_listed_with_its_line() -> None:
    text = BASE.format(notes='        autoscaling.knative.dev/minScale: "x"\n'
                             "        autoscaling.knative.dev/windw: 10s\n",
                       image="${REPO}/app") + "          prts: []\n"
    with pytest.raises(InvalidSpec) as info:
        parse(text)
    lines = str(info.value).splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith("svc.yaml:9: spec.template.metadata.annotations.autoscaling."
                               "knative.dev/minScale: must be a whole number")
    assert any("windw" in line and 'did you mean "autoscaling.knative.dev/window"' in line
               for line in lines)
    assert any(line.startswith("svc.yaml:13: ") and "image" in line for line in lines)
    assert any('unknown field "prts"' in line for line in lines)


def test_camel_case_aliases_are_read_and_conflicts_refused() -> None:
    spec = parse(BASE.format(notes='        autoscaling.knative.dev/minScale: "2"\n',
                             image="app"))
    assert spec.template.annotation("autoscaling.knative.dev/min-scale") == "2"  # type: ignore[attr-defined]
    with pytest.raises(InvalidSpec, match="same annotation"):
        parse(BASE.format(notes='        autoscaling.knative.dev/maxScale: "2"\n'
                                '        autoscaling.knative.dev/max-scale: "3"\n',
                          image="app"))


def test_read_only_metadata_is_noted_and_warnings_are_said() -> None:
    notes: list[str] = []
    text = BASE.format(notes="        features.knative.dev/queueproxy-podinfo: enabled\n",
                       image="app").replace(
        "  name: web\n", "  name: web\n  uid: abc\n  creationTimestamp: null\n", 1)
    spec = parse(text + "status: {url: x}\n", notes)
    assert "svc.yaml:5: metadata: ignored the read-only fields uid, creationTimestamp " \
           "(set by the server, not by you)" in notes
    assert any("status: ignored" in n for n in notes)
    (warning,) = spec_warnings(spec, ACCEPT_ALL)  # type: ignore[arg-type]
    assert "queueproxy-podinfo: accepted but has no effect" in warning


SECRET_DOC = """\
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: default}
data:
  user: YWRtaW4=
stringData:
  password: hunter2
"""


def test_a_secret_parses_and_is_only_ever_shown_redacted() -> None:
    ns, name, body = SECRET.parse(Located(yaml.safe_load(SECRET_DOC)))
    assert (ns, name) == ("default", "creds")
    assert body.get("user") == b"admin" and body.get("password") == b"hunter2"
    shown = SECRET.shown(ObjectKey("Secret", ns, name), body)
    assert shown["data"] == {"password": "<redacted: 7 bytes>", "user": "<redacted: 5 bytes>"}
    assert SECRET.from_json(SECRET.to_json(body)) == body
    with pytest.raises(InvalidSpec) as info:
        SECRET.parse(Located(yaml.safe_load(SECRET_DOC.replace("YWRtaW4=", "not base64!"))))
    assert "data.user: is not base64" in str(info.value)
    assert "not base64!" not in str(info.value)  # a value is never repeated
    with pytest.raises(InvalidSpec, match="a value paasd redacted"):
        SECRET.parse(Located(shown))  # an export cannot be applied back blindly


def test_references_resolve_into_env_and_files_or_say_what_is_missing() -> None:
    _, _, secret = SECRET.parse(Located(yaml.safe_load(SECRET_DOC)))
    _, _, config = CONFIGMAP.parse(Located(yaml.safe_load(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {mode: fast}\n")))
    objects = {("Secret", "creds"): secret, ("ConfigMap", "cfg"): config}
    spec = parse(BASE.format(notes="", image="app") + """\
          env:
            - name: PASS
              valueFrom: {secretKeyRef: {name: creds, key: password}}
            - name: POD
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          envFrom:
            - configMapRef: {name: cfg}
              prefix: CFG_
          volumeMounts: [{name: s, mountPath: /etc/s}]
      volumes:
        - name: s
          secret:
            secretName: creds
            items: [{key: user, path: who/user, mode: 0400}]
""")
    ctx = Context("default", "web-00001-abcde",
                  lambda kind, ns, name: objects.get((kind, name)))
    t = spec.template  # type: ignore[attr-defined]
    assert environment(t.container, ctx) == {"CFG_mode": "fast", "PASS": "hunter2",
                                             "POD": "web-00001-abcde"}
    assert volume_files(t.pod.volumes[0], ctx) == {"who/user": (b"admin", 0o400)}
    nothing = Context("default", "x", lambda kind, ns, name: None)
    with pytest.raises(Unresolved, match="ConfigMap 'cfg' not found"):
        environment(t.container, nothing)
    assert missing(t, "default", lambda kind, ns, name: None) == [
        "Secret 'creds' does not exist (yet) in namespace 'default': instances will not "
        "start until it does",
        "ConfigMap 'cfg' does not exist (yet) in namespace 'default': instances will not "
        "start until it does"]


def test_docker_options_from_resources_and_security_context() -> None:
    spec = parse(BASE.format(notes="", image="app") + """\
          resources:
            limits: {memory: 64Mi, cpu: "1.5"}
            requests: {memory: 32Mi, cpu: 250m}
          securityContext:
            runAsUser: 1000
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      securityContext: {runAsGroup: 2000, runAsNonRoot: true}
""")
    t = spec.template  # type: ignore[attr-defined]
    opts = container_options(t, t.container, {})
    assert opts.kwargs == {
        "mem_limit": 64 * 2**20, "memswap_limit": 64 * 2**20, "nano_cpus": 1_500_000_000,
        "mem_reservation": 32 * 2**20, "cpu_shares": 256, "user": "1000:2000",
        "read_only": True, "security_opt": ["no-new-privileges:true"],
        "cap_add": ["NET_BIND_SERVICE"], "cap_drop": ["ALL"]}
    assert opts.run_as_non_root
    assert quantity("1e3") == 1000 and quantity("2Gi") == 2 * 2**30


def test_registry_credentials_come_from_a_dockerconfigjson() -> None:
    import base64
    import json

    config = json.dumps({"auths": {"ghcr.io": {"auth": base64.b64encode(b"me:tok").decode()}}})
    assert registry_auth("ghcr.io/me/app:1", [config.encode()]) == {"username": "me",
                                                                    "password": "tok"}
    assert registry_auth("docker.io/library/x", [config.encode()]) is None


def test_the_sample_checker_finds_a_dropped_field() -> None:
    written = yaml.safe_load(SAMPLES[0].read_text())
    exported = service_to_document(parse(SAMPLES[0].read_text()))  # type: ignore[arg-type]
    assert dropped(written, exported, []) == []
    exported["spec"]["template"]["spec"]["containers"][0].pop("env")
    assert dropped(written, exported, []) == [
        "spec.template.spec.containers[0].env[0].name='TARGET'",
        "spec.template.spec.containers[0].env[0].value='Clojure Sample v1'"]


def test_a_sessions_cpu_and_memory_are_read_from_proc() -> None:
    import subprocess
    import sys

    from paasd.runtime.process.runtime import session_usage

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n" \
           "import sys; sys.stdout.write('done'); sys.stdout.flush(); time.sleep(5)"
    proc = subprocess.Popen([sys.executable, "-c", burn], start_new_session=True,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.read(4) == b"done"
        reading = session_usage(proc.pid)
        assert reading is not None
        cpu, rss = reading
        assert cpu >= 0.25 and rss > 1_000_000
    finally:
        proc.kill()
        proc.wait()
    assert session_usage(proc.pid) is None


def test_kubectl_get_output_applies_unchanged_and_nothing_is_dropped() -> None:
    from tests.knative.samples import ROOT

    text = (ROOT / "tests" / "data" / "kubectl-get-ksvc.yaml").read_text()
    notes: list[str] = []
    spec = parse(text, notes)
    assert len(notes) == 4  # status, metadata, template metadata, empty resources
    assert dropped(yaml.safe_load(text), service_to_document(spec), notes) == []  # type: ignore[arg-type]
    assert dropped(yaml.safe_load(text), service_to_document(spec), []) != []  # notes matter


def test_a_probe_as_written_becomes_its_plan_with_kubernetes_defaults() -> None:
    from paasd.runtime.local.probes import plan

    spec = parse(BASE.format(notes="", image="app") + """\
          readinessProbe:
            httpGet:
              path: /healthz
              port: 9000
              scheme: HTTPS
              httpHeaders: [{name: X-Probe, value: "1"}]
            periodSeconds: 0
          livenessProbe:
            grpc: {port: 9090, service: app}
            failureThreshold: 5
""")
    c = spec.template.container  # type: ignore[attr-defined]
    ready = plan(c.readiness_probe)
    assert (ready.handler, ready.port, ready.path, ready.https, ready.headers) == (
        "httpGet", 9000, "/healthz", True, (("X-Probe", "1"),))
    assert not ready.plain
    alive = plan(c.liveness_probe)
    assert (alive.handler, alive.port, alive.service, alive.period, alive.timeout,
            alive.failure_threshold) == ("grpc", 9090, "app", 10.0, 1.0, 5)


def test_a_problem_is_said_once() -> None:
    text = ("apiVersion: serving.knative.dev/v1\nkind: Service\n"
            "metadata: {name: x, nmespace: y}\nspec:\n  template:\n    spec:\n"
            "      containers: [3]\n")
    with pytest.raises(InvalidSpec) as info:
        parse(text)
    assert str(info.value).splitlines() == [
        'svc.yaml:3: metadata.nmespace: unknown field "nmespace" (did you mean "namespace"?)',
        "svc.yaml:7: spec.template.spec.containers[0]: must be a mapping, got an integer"]
