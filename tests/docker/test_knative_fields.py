"""The Knative fields real services use, on the docker runtime (issue 16): a memory limit
that OOM-kills, a liveness probe that restarts, a non-root securityContext seen from
inside, a sidecar reachable on localhost, an init container filling an emptyDir."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.docker.conftest import BASE_IMAGE, DockerDaemon
from tests.waiting import wait_for

pytestmark = pytest.mark.docker

HOST = "web.default.example.com"
MIN1 = '        autoscaling.knative.dev/min-scale: "1"\n'


def service(tag: str, container: str, pod: str = "", annotations: str = MIN1) -> str:
    return f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
{annotations}    spec:
{pod}      containers:
        - image: {BASE_IMAGE}
          env:
            - name: PAASD_TEST_TAG
              value: "{tag}"
{container}"""


def serve(body: str, extra: str = "") -> str:
    return ('          command: ["sh", "-c", "' + extra + "mkdir -p /tmp/site && echo " + body
            + ' > /tmp/site/index.html && exec httpd -f -p 127.0.0.1:$PORT -h /tmp/site"]\n')


def revision(d: DockerDaemon) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(d.ctl("revision", "describe", "web-00001", "-o",
                                            "json").stdout)
    return data


def test_a_memory_limit_is_enforced_and_an_oom_kill_is_reported(ddaemon: DockerDaemon) -> None:
    hog = "x=$(head -c 200000000 /dev/zero | tr '\\\\0' a); "
    ddaemon.apply(service(ddaemon.tag, serve("never", hog) +
                          "          resources:\n            limits:\n"
                          "              memory: 32Mi\n              cpu: 500m\n"))
    ready = wait_for("the revision to fail with OOMKilled", lambda: next(
        (c for c in revision(ddaemon)["status"]["conditions"]
         if c["type"] == "Ready" and c.get("reason") == "OOMKilled"), None), timeout=60)
    assert "more memory than its limit (32Mi)" in ready["message"]
    ctr = wait_for("a container", lambda: next(iter(ddaemon.containers(all=True)), None))
    host = ctr.attrs["HostConfig"]
    assert host["Memory"] == 32 * 2**20 and host["NanoCpus"] == 500_000_000


def test_a_failing_liveness_probe_restarts_the_instance(ddaemon: DockerDaemon) -> None:
    # alive for two seconds after each start, then the exec probe fails
    ddaemon.apply(service(ddaemon.tag, serve("alive", "touch /tmp/alive; "
                                                       "(sleep 2; rm /tmp/alive) & ") +
                          "          livenessProbe:\n            exec:\n"
                          "              command: [test, -f, /tmp/alive]\n"
                          "            periodSeconds: 1\n            failureThreshold: 2\n"))
    ddaemon.wait_served(HOST, "alive")
    inst = wait_for("a restart for the liveness probe", lambda: next(
        (i for i in ddaemon.instances() if i["restarts"] >= 1), None), timeout=60)
    assert inst["restarts"] >= 1
    events = ddaemon.ctl("revision", "describe", "web-00001", "-o", "json").stdout
    wait_for("the reason said", lambda: "liveness probe (exec) failed 2 times in a row" in (
        ddaemon.log() + events + json.dumps(ddaemon.instances())), timeout=30)


def test_a_non_root_security_context_is_seen_from_inside(ddaemon: DockerDaemon) -> None:
    ddaemon.apply(service(ddaemon.tag, (
        '          command: ["sh", "-c", "echo identity $(id -u):$(id -g); '
        'exec httpd -f -p 127.0.0.1:$PORT -h /site"]\n'
        "          securityContext:\n            runAsNonRoot: true\n"
        "            runAsUser: 1000\n            runAsGroup: 1001\n"
        "            readOnlyRootFilesystem: true\n"
        "            allowPrivilegeEscalation: false\n"
        "            capabilities:\n              drop: [ALL]\n")))
    wait_for("the app's identity in its logs",
             lambda: "identity 1000:1001" in ddaemon.ctl("logs", "web").stdout, timeout=30)
    (ctr,) = ddaemon.containers()
    host = ctr.attrs["HostConfig"]
    assert ctr.attrs["Config"]["User"] == "1000:1001"
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]


def test_run_as_non_root_on_a_root_image_is_refused_at_start(ddaemon: DockerDaemon) -> None:
    ddaemon.apply(service(ddaemon.tag, serve("x") + "          securityContext:\n"
                                                    "            runAsNonRoot: true\n"))
    inst = wait_for("the refusal on the instance", lambda: next(
        (i for i in ddaemon.instances() if "runAsNonRoot" in i["message"]), None), timeout=30)
    assert "will run as root" in inst["message"]
    assert not ddaemon.containers()


def test_a_sidecar_is_reachable_on_localhost_and_init_fills_an_empty_dir(
        ddaemon: DockerDaemon) -> None:
    pod = ("      volumes:\n        - name: shared\n          emptyDir: {}\n"
           "      initContainers:\n        - name: seed\n"
           f"          image: {BASE_IMAGE}\n"
           '          command: ["sh", "-c", "echo seeded-by-init > /shared/greeting"]\n'
           "          volumeMounts:\n            - name: shared\n"
           "              mountPath: /shared\n")
    main = ('          name: app\n          ports:\n            - containerPort: 8080\n'
            '          command: ["sh", "-c", "mkdir -p /tmp/site; until wget -q -O '
            '/tmp/site/index.html http://127.0.0.1:9000/greeting; do sleep 0.2; done; '
            'exec httpd -f -p 8080 -h /tmp/site"]\n'
            "        - name: helper\n"
            f"          image: {BASE_IMAGE}\n"
            '          command: ["httpd", "-f", "-p", "127.0.0.1:9000", "-h", "/shared"]\n'
            "          volumeMounts:\n            - name: shared\n"
            "              mountPath: /shared\n              readOnly: true\n")
    ddaemon.apply(service(ddaemon.tag, main, pod))
    ddaemon.wait_served(HOST, "seeded-by-init", timeout=60)
    roles = sorted(c.labels.get("paasd.dev/role", "app") for c in ddaemon.containers())
    assert roles == ["app", "sidecar"]
    ddaemon.ctl("service", "delete", "web")
    wait_for("every container removed", lambda: not ddaemon.containers(all=True), timeout=30)


SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: {value}
---
"""


def test_a_secret_in_env_and_as_a_mounted_file_never_shown_in_clear(
        ddaemon: DockerDaemon) -> None:
    import threading

    from paasd.client import Client

    seen: list[str] = []

    def watch() -> None:  # everything the watch stream says, while the test runs
        with Client(ddaemon.socket, timeout=60) as client:
            for message in client.watch():
                seen.append(json.dumps(message))
                if len(seen) > 500:
                    return

    threading.Thread(target=watch, daemon=True).start()
    pod = ("      volumes:\n        - name: creds\n          secret:\n"
           "            secretName: creds\n")
    app = ("            - name: PASSWORD\n              valueFrom:\n"
           "                secretKeyRef: {name: creds, key: password}\n"
           '          command: ["sh", "-c", "mkdir -p /tmp/site; while true; do '
           '{ echo env=$PASSWORD; echo file=$(cat /etc/creds/password); } '
           '> /tmp/site/index.html; sleep 0.2; done & '
           'exec httpd -f -p 127.0.0.1:$PORT -h /tmp/site"]\n'
           "          volumeMounts:\n            - name: creds\n"
           "              mountPath: /etc/creds\n")
    # the Service first, the Secret after it in the same file: either order works
    ddaemon.apply(service(ddaemon.tag, app, pod) + "---\n" + SECRET.format(value="s3cr3t-1"))
    ddaemon.wait_served(HOST, "env=s3cr3t-1\nfile=s3cr3t-1")
    # a change of the Secret: no new revision; the mounted file changes in place
    ddaemon.apply(SECRET.format(value="s3cr3t-2"))
    ddaemon.wait_served(HOST, "env=s3cr3t-1\nfile=s3cr3t-2")
    revisions = json.loads(ddaemon.ctl("revision", "list", "-o", "json").stdout)["items"]
    assert [r["metadata"]["name"] for r in revisions] == ["web-00001"]
    shown = ddaemon.ctl("secret", "list", "-o", "json").stdout + \
        ddaemon.ctl("service", "export", "--all").stdout + ddaemon.log() + \
        ddaemon.ctl("logs", "web").stdout + "".join(seen)
    assert "creds" in shown and "<redacted: 8 bytes>" in shown
    for value in ("s3cr3t-1", "s3cr3t-2"):
        import base64

        assert value not in shown and base64.b64encode(value.encode()).decode() not in shown
    assert any('"kind": "Secret"' in m for m in seen)


def test_a_missing_secret_holds_the_instance_until_it_exists(ddaemon: DockerDaemon) -> None:
    app = ("            - name: TOKEN\n              valueFrom:\n"
           "                configMapKeyRef: {name: settings, key: token}\n" + serve("$TOKEN"))
    r = ddaemon.ctl("apply", "-f", "-", stdin=service(ddaemon.tag, app))
    assert "ConfigMap 'settings' does not exist (yet)" in r.stderr
    inst = wait_for("the instance to say what it waits for", lambda: next(
        (i for i in ddaemon.instances() if "ConfigMap 'settings' not found" in i["message"]),
        None), timeout=30)
    assert inst["phase"] in ("backoff", "starting")
    ddaemon.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                  "data:\n  token: from-the-configmap\n")
    ddaemon.wait_served(HOST, "from-the-configmap", timeout=60)


def test_an_hpa_class_service_scales_on_cpu(ddaemon: DockerDaemon) -> None:
    notes = (MIN1 + "        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev\n"
                    "        autoscaling.knative.dev/metric: cpu\n"
                    '        autoscaling.knative.dev/target: "50"\n'
                    '        autoscaling.knative.dev/max-scale: "2"\n')
    # each instance burns what its limit lets it (0.2 cores: 200 % of its request)
    app = serve("busy", "while :; do :; done & ") + (
        "          resources:\n            requests:\n              cpu: 100m\n"
        "            limits:\n              cpu: 200m\n")
    ddaemon.apply(service(ddaemon.tag, app, annotations=notes))
    ddaemon.wait_served(HOST, "busy")
    wait_for("a second instance for the CPU load", lambda: len(
        [i for i in ddaemon.instances() if i["phase"] == "ready"]) == 2, timeout=60)
    described = revision(ddaemon)
    assert described["status"]["desiredReplicas"] == 2
    ddaemon.ctl("service", "delete", "web")  # stop burning
    wait_for("every container removed", lambda: not ddaemon.containers(all=True), timeout=30)
