"""The builder: Dockerfile and detected-stack builds, no-op rebuilds, failed builds that
change nothing, and git push deploys — all against the local engine."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.docker.conftest import BASE_IMAGE, DockerDaemon, app_dir
from tests.waiting import wait_for

pytestmark = pytest.mark.docker

HOST = "web.default.example.com"


def revisions(d: DockerDaemon) -> list[str]:
    items = json.loads(d.ctl("revision", "list", "-o", "json").stdout)["items"]
    return [r["metadata"]["name"] for r in items]


def builds(d: DockerDaemon) -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(d.ctl("builds", "-o", "json").stdout)["items"]
    return items


def test_build_from_dockerfile_deploys_and_unchanged_source_builds_nothing(
        ddaemon: DockerDaemon, tmp_path: Path) -> None:
    src = app_dir(tmp_path / "src", f"v1 {ddaemon.tag}")
    result = ddaemon.ctl("build", "web", "--source", str(src), "-f")
    assert "using the Dockerfile in the source" in result.stdout
    assert "Step 1/" in result.stdout and "deployed paasd.local/default/web:" in result.stdout
    ddaemon.wait_served(HOST, f"v1 {ddaemon.tag}")
    (first,) = builds(ddaemon)
    assert first["status"] == "succeeded" and first["revision"] == "web-00001"
    assert first["image"] == f"paasd.local/default/web:{str(first['digest'])[:24]}"
    assert isinstance(first["durationSeconds"], float)

    again = ddaemon.ctl("build", "web", "--source", str(src))
    assert "source unchanged" in again.stdout
    assert revisions(ddaemon) == ["web-00001"]
    assert builds(ddaemon)[-1]["status"] == "unchanged"

    # an edit is a new image and a new revision
    (src / "index.html").write_text(f"v2 {ddaemon.tag}\n")
    ddaemon.ctl("build", "web", "--source", str(src))
    ddaemon.wait_served(HOST, f"v2 {ddaemon.tag}")
    assert revisions(ddaemon) == ["web-00001", "web-00002"]


def test_failed_build_leaves_the_old_revision_serving(ddaemon: DockerDaemon,
                                                     tmp_path: Path) -> None:
    src = app_dir(tmp_path / "src", f"good {ddaemon.tag}")
    ddaemon.ctl("service", "create", "web", "--source", str(src))
    ddaemon.wait_served(HOST, f"good {ddaemon.tag}")
    app_dir(src, f"bad {ddaemon.tag}", extra="RUN echo compiling; exit 3\n")
    result = ddaemon.ctl("build", "web", "--source", str(src), check=False)
    assert result.returncode == 1
    assert "failed at step 2/4 (RUN echo compiling; exit 3)" in result.stderr
    assert "returned a non-zero code: 3" in result.stderr
    assert "compiling" in result.stderr  # the log tail
    assert revisions(ddaemon) == ["web-00001"]
    ddaemon.wait_served(HOST, f"good {ddaemon.tag}")
    assert builds(ddaemon)[-1]["status"] == "failed"


def test_stack_detection_static_site_on_a_local_base_image(ddaemon: DockerDaemon,
                                                          tmp_path: Path) -> None:
    src = app_dir(tmp_path / "site", f"static {ddaemon.tag}", dockerfile=False)
    shown = ddaemon.ctl("build", "web", "--source", str(src), "--print-dockerfile").stdout
    assert shown.startswith(f"FROM {BASE_IMAGE}\n") and "httpd -f -p 127.0.0.1:$PORT" in shown
    assert not builds(ddaemon)  # printing builds nothing
    out = ddaemon.ctl("build", "web", "--source", str(src), "-f").stdout
    assert "static app detected" in out
    ddaemon.wait_served(HOST, f"static {ddaemon.tag}")


def test_python_stack_uses_the_configured_base_image(ddaemon: DockerDaemon,
                                                    tmp_path: Path) -> None:
    src = tmp_path / "py"
    src.mkdir()
    (src / "requirements.txt").write_text("")
    (src / "Procfile").write_text("web: python3 app.py\n")
    shown = ddaemon.ctl("build", "web", "--source", str(src), "--print-dockerfile").stdout
    assert shown.startswith(f"FROM {BASE_IMAGE}\n")
    assert "pip install --no-cache-dir -r requirements.txt" in shown
    assert '"exec python3 app.py"' in shown
    # the busybox base has no pip: the build fails at that step and says so
    result = ddaemon.ctl("build", "web", "--source", str(src), check=False)
    assert result.returncode == 1 and "RUN pip install" in result.stderr


def test_bad_sources_are_clear_errors(ddaemon: DockerDaemon, tmp_path: Path) -> None:
    missing = ddaemon.ctl("build", "web", "--source", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("nothing to run\n")
    unknown = ddaemon.ctl("build", "web", "--source", str(empty), check=False)
    assert unknown.returncode == 1
    assert "no Dockerfile and no supported stack" in unknown.stderr
    assert "package.json" in unknown.stderr and "index.html" in unknown.stderr
    assert not builds(ddaemon) and not revisions(ddaemon)


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=check, timeout=120)


def test_git_push_builds_and_deploys_and_a_failed_build_rejects_the_push(
        ddaemon: DockerDaemon, tmp_path: Path) -> None:
    out = ddaemon.ctl("git", "init", "web").stdout
    repo = out.split()[1]
    assert Path(repo, "hooks", "pre-receive").exists()
    work = app_dir(tmp_path / "work", f"pushed v1 {ddaemon.tag}")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-qm", "v1")
    git(work, "remote", "add", "paasd", repo)
    push = git(work, "push", "paasd", "main")
    assert "remote: -----> deployed paasd.local/default/web:" in push.stderr
    ddaemon.wait_served(HOST, f"pushed v1 {ddaemon.tag}")

    app_dir(work, f"pushed v2 {ddaemon.tag}")
    git(work, "commit", "-qam", "v2")
    git(work, "push", "paasd", "main")
    ddaemon.wait_served(HOST, f"pushed v2 {ddaemon.tag}")

    app_dir(work, "broken", extra="RUN exit 7\n")
    git(work, "commit", "-qam", "broken")
    failed = git(work, "push", "paasd", "main", check=False)
    assert failed.returncode != 0
    assert "failed at step 2/" in failed.stderr and "pre-receive hook declined" in failed.stderr
    ddaemon.wait_served(HOST, f"pushed v2 {ddaemon.tag}")
    assert revisions(ddaemon) == ["web-00001", "web-00002"]
    assert [b["origin"] for b in builds(ddaemon)] == ["git", "git", "git"]


def test_builds_run_one_at_a_time_per_service(ddaemon: DockerDaemon, tmp_path: Path) -> None:
    srcs = [app_dir(tmp_path / f"s{i}", f"q{i} {ddaemon.tag}") for i in range(3)]
    queued = [json.loads(ddaemon.api("POST", "/v1/namespaces/default/services/web/builds",
                                     json={"source": str(s)}).text)["id"] for s in srcs]

    def done() -> list[dict[str, object]] | None:
        items = [b for b in builds(ddaemon) if b["id"] in queued]
        return items if all(b["status"] in ("succeeded", "failed") for b in items) else None

    items = wait_for("three builds to finish", done, timeout=90)
    assert [b["status"] for b in items] == ["succeeded"] * 3
    spans = sorted((float(str(b["startedAt"])), float(str(b["finishedAt"]))) for b in items)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # no overlap
    assert revisions(ddaemon) == ["web-00001", "web-00002", "web-00003"]


def test_service_with_source_in_the_config_file_is_built_and_deployed(
        tmp_path: Path, base_image: str) -> None:
    src = app_dir(tmp_path / "declared", f"from the file {tmp_path.name}")
    d = DockerDaemon(tmp_path, config_extra=f"""
[[service]]
name = "web"
source = "{src}"
env = {{ GREETING = "hi" }}
""")
    d.start()
    try:
        d.wait_served(HOST, f"from the file {tmp_path.name}", timeout=60)
        (build,) = builds(d)
        assert build["origin"] == "config" and build["status"] == "succeeded"
        (src / "index.html").write_text(f"edited {tmp_path.name}\n")
        d.ctl("config", "reload")
        d.wait_served(HOST, f"edited {tmp_path.name}", timeout=60)
        assert revisions(d) == ["web-00001", "web-00002"]
        d.ctl("config", "reload")  # nothing changed: no build, no revision
        wait_for("the third build to finish",
                 lambda: len(items := builds(d)) == 3 and items[-1]["status"] == "unchanged")
        assert revisions(d) == ["web-00001", "web-00002"]
    finally:
        d.stop()
        d.remove_containers()
        d.remove_images()


def test_the_watch_stream_carries_the_build_log_live(ddaemon: DockerDaemon,
                                                    tmp_path: Path) -> None:
    import threading

    import httpx

    seen: list[dict[str, object]] = []
    done = threading.Event()
    connected = threading.Event()  # the daemon registers the watcher before it answers

    def watch() -> None:
        with httpx.Client(transport=httpx.HTTPTransport(uds=ddaemon.socket),
                          base_url="http://paasd", timeout=60) as c, \
                c.stream("GET", "/v1/watch") as response:
            connected.set()
            for line in response.iter_lines():
                if not line:
                    continue
                message = json.loads(line)
                seen.append(message)
                if message["kind"] == "Build" and message["type"] == "MODIFIED" and \
                        message["object"].get("status") == "succeeded":
                    done.set()
                    return

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    wait_for("the watch to start", connected.is_set, timeout=10)
    src = app_dir(tmp_path / "src", f"watched {ddaemon.tag}")
    ddaemon.ctl("build", "web", "--source", str(src))
    wait_for("the build's end on the watch stream", done.is_set, timeout=60)
    lines = [str(m["object"]["line"]) for m in seen if m["type"] == "BUILD_LOG"]
    assert any(line.startswith("Step 1/") for line in lines)
    assert any("deployed paasd.local/default/web:" in line for line in lines)
    reasons = [m["object"]["reason"] for m in seen if m["kind"] == "Event"]
    assert "BuildStarted" in reasons and "BuildSucceeded" in reasons


def test_the_build_queue_is_bounded(tmp_path: Path, base_image: str) -> None:
    d = DockerDaemon(tmp_path, builder_extra="queue_limit = 1\n")
    d.start()
    try:
        slow = app_dir(tmp_path / "slow", f"slow {d.tag}", extra="RUN sleep 3\n")
        first = d.api("POST", "/v1/namespaces/default/services/web/builds",
                      json={"source": str(slow)})
        assert first.status_code == 202
        second = d.ctl("build", "web", "--source", str(slow), check=False)
        assert second.returncode == 1 and "build queue is full" in second.stderr
        wait_for("the first build to succeed",
                 lambda: builds(d) and builds(d)[0]["status"] == "succeeded", timeout=60)
        assert len(builds(d)) == 1
    finally:
        d.stop()
        d.remove_containers()
        d.remove_images()


def test_builds_are_refused_on_the_process_runtime(tmp_path: Path) -> None:
    from tests.integration.conftest import Daemon

    d = Daemon(tmp_path)
    d.start()
    try:
        src = app_dir(tmp_path / "src", "x")
        result = d.ctl("build", "web", "--source", str(src), check=False)
        assert result.returncode == 1
        assert 'runtime = "docker"' in result.stderr
        assert not json.loads(d.ctl("builds", "-o", "json").stdout)["items"]
        # what would be built can still be looked at
        assert "FROM " in d.ctl("build", "web", "--source", str(src),
                                "--print-dockerfile").stdout
    finally:
        d.stop()
