"""Bring your Knative YAML (issue 16) on a real daemon: camelCase aliases honoured,
`kubectl get -o yaml` output applied unchanged with a note, every problem of a document
at once, image references checked, warnings said by apply and shown by describe, and
traffic to a revision that does not exist yet accepted with the route not ready."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Daemon
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

HOST = "hello.default.example.com"


def describe(daemon: Daemon, name: str = "hello") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(daemon.ctl("service", "describe", name, "-o",
                                                 "json").stdout)
    return data


def condition(view: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in view["status"]["conditions"] if c["type"] == kind)


def test_a_camel_case_min_scale_is_honoured(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(annotations='        autoscaling.knative.dev/minScale: "2"\n'))
    # no request is sent: only min-scale (read through its camelCase alias) starts two
    wait_for("two ready instances", lambda: sum(
        1 for i in daemon.instances() if i["phase"] == "ready") == 2, timeout=30)


def test_both_forms_with_different_values_are_refused_naming_both(daemon: Daemon) -> None:
    r = daemon.ctl("apply", "-f", "-", check=False, stdin=daemon.hello(annotations=(
        '        autoscaling.knative.dev/minScale: "2"\n'
        '        autoscaling.knative.dev/min-scale: "1"\n')))
    assert r.returncode == 1
    assert "autoscaling.knative.dev/minScale: '2'" in r.stderr
    assert "autoscaling.knative.dev/min-scale: '1'" in r.stderr


def test_kubectl_get_output_applies_unchanged_with_a_note(daemon: Daemon) -> None:
    text = daemon.hello().replace("metadata:\n  name: hello\n", (
        "metadata:\n  name: hello\n  namespace: default\n"
        "  selfLink: /apis/serving.knative.dev/v1/namespaces/default/services/hello\n"
        "  uid: 0b6a1c2e-1111-2222-3333-444455556666\n  resourceVersion: \"123\"\n"
        "  generation: 3\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n"
        "  managedFields:\n  - manager: kubectl\n    operation: Update\n"
        "  annotations:\n    serving.knative.dev/creator: admin\n"), 1)
    text = text.replace("  template:\n", "  template:\n    metadata:\n"
                                         "      creationTimestamp: null\n", 1)
    text = text.replace("          env:\n", "          resources: {}\n"
                                             "          readinessProbe:\n"
                                             "            successThreshold: 1\n"
                                             "            tcpSocket:\n              port: 0\n"
                                             "          env:\n", 1)
    text += "status:\n  observedGeneration: 3\n  url: http://hello.default.example.com\n"
    r = daemon.ctl("apply", "-f", "-", stdin=text)
    assert r.stdout.startswith("service.serving.knative.dev/hello created")
    assert "ignored the read-only fields selfLink, uid, resourceVersion, generation, " \
           "creationTimestamp, managedFields" in r.stderr
    assert "status: ignored" in r.stderr and "resources: ignored (empty)" in r.stderr
    daemon.wait_served(HOST, "Hello World!")


def test_every_problem_of_a_document_is_listed_at_once(daemon: Daemon) -> None:
    text = daemon.hello().replace("        - command:", "        - image: ${REPO}/app\n"
                                                     "          command:")
    text = text.replace("  name: hello\n", "  name: hello\n  nmespace: x\n", 1)
    text = text.replace("              value: \"World\"", "              value: 3")
    second = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"
              "data:\n  k: v\n")
    r = daemon.ctl("apply", "-f", "-", stdin=text + "---\n" + second, check=False)
    assert r.returncode == 1
    assert 'metadata.nmespace: unknown field "nmespace" (did you mean "namespace"?)' \
        in r.stderr
    assert "<stdin>:21: metadata.name: 'Bad_Name' is not a valid ConfigMap name" in r.stderr
    assert "containers[0].image: '${REPO}/app' is not an image reference" in r.stderr
    assert "placeholder" in r.stderr
    assert "env[0].value: must be a string; quote it" in r.stderr
    assert json.loads(daemon.ctl("service", "list", "-o", "json").stdout)["items"] == []


def test_warnings_are_said_by_apply_and_shown_by_describe(daemon: Daemon) -> None:
    text = daemon.hello(annotations="        features.knative.dev/queueproxy-podinfo: "
                                    "enabled\n")
    text = text.replace("  name: hello\n", "  name: hello\n  labels:\n"
                                           "    networking.knative.dev/visibility: "
                                           "cluster-local\n", 1)
    r = daemon.ctl("apply", "-f", "-", stdin=text)
    assert "warning: spec.template.metadata.annotations.features.knative.dev/" \
           "queueproxy-podinfo: accepted but has no effect" in r.stderr
    assert "warning: metadata.labels.networking.knative.dev/visibility" in r.stderr
    warned = condition(describe(daemon), "Warnings")
    assert warned["severity"] == "Warning" and "queueproxy-podinfo" in warned["message"]
    shown = daemon.ctl("service", "describe", "hello").stdout
    assert "\nWarnings:\n  " in shown
    assert "\n  spec.template.metadata.annotations.features.knative.dev/queueproxy-podinfo: " \
           "accepted but has no effect" in shown
    r = daemon.ctl("apply", "-f", "-", check=False, stdin=daemon.hello(
        annotations='        autoscaling.knative.dev/minscale: "1"\n'))
    assert r.returncode == 1 and "unknown Knative annotation" in r.stderr \
        and "did you mean \"autoscaling.knative.dev/min-scale\"" in r.stderr


def test_traffic_to_a_revision_not_yet_existing_waits_for_it(daemon: Daemon) -> None:
    pinned = daemon.hello(target="blue").replace(
        "  template:\n", "  template:\n    metadata:\n      name: hello-blue\n", 1) + (
        "  traffic:\n    - revisionName: hello-green\n      percent: 100\n")
    daemon.apply(pinned)
    routes = condition(describe(daemon), "RoutesReady")
    assert (routes["status"], routes["reason"]) == ("False", "RevisionMissing")
    assert "'hello-green'" in routes["message"]
    assert daemon.get(HOST).status_code != 200
    green = pinned.replace("name: hello-blue", "name: hello-green").replace(
        'value: "blue"', 'value: "green"')
    daemon.apply(green)
    daemon.wait_served(HOST, "Hello green!")
    assert condition(describe(daemon), "RoutesReady")["status"] == "True"


def test_secrets_and_configmaps_on_the_process_runtime(daemon: Daemon) -> None:
    import sys

    from tests.integration.conftest import HELLO_APP

    objects = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n"
               "stringData:\n  target: from-a-secret\n---\n"
               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
               "data:\n  greeting: {greeting}\n---\n")
    command = (f'["sh", "-c", "echo greeting=$(cat /etc/cfg/greeting) at $GREETING_AT; '
               f'exec {sys.executable} {HELLO_APP}"]')
    svc = daemon.hello(command=command).replace(
        '            - name: TARGET\n              value: "World"\n',
        "            - name: TARGET\n              valueFrom:\n"
        "                secretKeyRef: {name: app, key: target}\n"
        "            - name: GREETING_AT\n              value: /etc/cfg/greeting\n")
    svc = svc.replace("      containers:\n", "      volumes:\n        - name: cfg\n"
                                                "          configMap: {name: cfg}\n"
                                                "      containers:\n")
    svc += "          volumeMounts:\n            - name: cfg\n              mountPath: /etc/cfg\n"
    r = daemon.ctl("apply", "-f", "-", stdin=objects.format(greeting="hi") + svc)
    assert "volumeMounts: on the process runtime: a process has no mount namespace" in r.stderr
    daemon.wait_served(HOST, "Hello from-a-secret!")
    (inst,) = daemon.instances()
    logs = wait_for("the file's content in the logs", lambda: (
        out if "greeting=hi" in (out := daemon.ctl("logs", "hello").stdout) else None))
    volume = daemon.state_dir / "volumes" / inst["id"] / "cfg"
    assert f"at {volume}/greeting" in logs  # the mountPath, rewritten and said
    assert (volume.parent.parent.stat().st_mode & 0o777) == 0o700
    daemon.apply(objects.format(greeting="hello-again"))  # in place: no new revision
    wait_for("the file rewritten", lambda: (volume / "greeting").read_bytes() == b"hello-again")
    revisions = json.loads(daemon.ctl("revision", "list", "-o", "json").stdout)["items"]
    assert len(revisions) == 1
    listed = daemon.ctl("secret", "list").stdout
    assert "app" in listed and "target" in listed and "from-a-secret" not in listed


def test_sidecars_init_containers_and_security_on_the_process_runtime(
        daemon: Daemon) -> None:
    import os
    import sys

    from tests.integration.conftest import free_port

    side_port = free_port()
    # the init container writes a file the sidecar serves; the app answers with what it
    # fetched from the sidecar on loopback
    fetch = (f"import urllib.request, os; os.environ['TARGET'] = urllib.request.urlopen("
             f"'http://127.0.0.1:{side_port}/greeting').read().decode().strip(); "
             f"import runpy; runpy.run_path('{HELLO_APP_PATH}', run_name='__main__')")
    svc = daemon.hello(command=f'["{sys.executable}", "-c", "{fetch}"]').replace(
        "      containers:\n",
        "      volumes:\n        - name: shared\n          emptyDir: {}\n"
        "      initContainers:\n        - name: seed\n"
        '          command: ["sh", "-c", "echo from-the-sidecar > /shared/greeting"]\n'
        "          volumeMounts: [{name: shared, mountPath: /shared}]\n"
        "      containers:\n")
    svc = svc.replace("        - command:", "        - name: app\n          ports: "
                      "[{containerPort: 8080}]\n          command:", 1)
    svc += ("          securityContext:\n            allowPrivilegeEscalation: false\n"
            "            capabilities: {drop: [ALL]}\n"
            "        - name: helper\n"
            f'          command: ["{sys.executable}", "-m", "http.server", "{side_port}", '
            '"--bind", "127.0.0.1", "--directory", "/shared"]\n'
            "          volumeMounts: [{name: shared, mountPath: /shared}]\n")
    r = daemon.ctl("apply", "-f", "-", stdin=svc)
    assert "capabilities not applied" in r.stderr
    daemon.wait_served(HOST, "Hello from-the-sidecar!", timeout=30)
    (inst,) = daemon.instances()
    main = int(inst["pid"])
    from pathlib import Path

    status = Path(f"/proc/{main}/status").read_text()
    assert "NoNewPrivs:\t1" in status
    record = json.loads((daemon.state_dir / "instances" / f"{inst['id']}.json").read_text())
    (sidecar,) = record["sidecars"]
    assert os.path.exists(f"/proc/{sidecar}")
    daemon.ctl("service", "delete", "hello")
    wait_for("the sidecar stopped with its instance",
             lambda: not os.path.exists(f"/proc/{sidecar}") or
             "zombie" in Path(f"/proc/{sidecar}/status").read_text().lower(), timeout=30)


HELLO_APP_PATH = str(__import__("tests.integration.conftest", fromlist=["HELLO_APP"]).HELLO_APP)


def test_an_immutable_configmap_cannot_change(daemon: Daemon) -> None:
    doc = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fixed\nimmutable: true\n"
           "data:\n  k: {value}\n")
    daemon.apply(doc.format(value="one"))
    r = daemon.ctl("apply", "-f", "-", stdin=doc.format(value="two"), check=False)
    assert r.returncode == 1 and "ConfigMap default/fixed: it is immutable" in r.stderr
    assert "unchanged" in daemon.ctl("apply", "-f", "-", stdin=doc.format(value="one")).stdout


def test_a_readiness_probe_that_fails_later_takes_the_instance_out(daemon: Daemon) -> None:
    import sys

    from tests.integration.conftest import HELLO_APP

    flag = daemon.tmp / "ready-flag"
    flag.write_text("")
    svc = daemon.hello(command=f'["{sys.executable}", "{HELLO_APP}"]',
                       annotations='        autoscaling.knative.dev/min-scale: "1"\n')
    svc += ("          readinessProbe:\n            exec:\n"
            f"              command: [test, -f, {flag}]\n"
            "            periodSeconds: 1\n            failureThreshold: 2\n")
    daemon.apply(svc)
    daemon.wait_served(HOST, "Hello World!")
    flag.unlink()
    inst = wait_for("the instance out of the routing", lambda: next(
        (i for i in daemon.instances() if i.get("reason") == "ReadinessProbeFailed"), None),
        timeout=20)
    assert inst["phase"] == "starting" and inst["restarts"] == 0  # not restarted
    flag.write_text("")
    daemon.wait_served(HOST, "Hello World!")
