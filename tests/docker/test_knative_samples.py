"""The acceptance test of issue 16: Knative's own Service samples (137 documents from its
documentation and test images, tests/data/ksvc-samples) applied unchanged on the docker
runtime. At least 95 % are accepted, and nothing in an accepted one is silently dropped:
every field is in what paasd would store, or said in a note, or is Knative's default.

The images are not on this machine and no registry is reachable, so each document is
applied with `--dry-run` (kubectl's `--dry-run=server`): the daemon runs every check a
real apply does, stores nothing and starts nothing (no pull is attempted)."""

from __future__ import annotations

import pytest
import yaml

from paasd.client import ApiError, Client
from tests.docker.conftest import DockerDaemon
from tests.knative.samples import SAMPLES, dropped

pytestmark = pytest.mark.docker


def test_the_knative_samples_apply_unchanged_and_nothing_is_dropped(
        ddaemon: DockerDaemon) -> None:
    assert len(SAMPLES) == 137
    refused: dict[str, str] = {}
    silently: dict[str, list[str]] = {}
    with Client(ddaemon.socket) as client:
        for path in SAMPLES:
            text = path.read_text()
            try:
                (result,) = client.apply(text, path.name, dry_run=True)
            except ApiError as exc:
                refused[path.name] = str(exc)
                continue
            assert result["outcome"] == "created (dry run)", result
            lost = dropped(yaml.safe_load(text), result["document"], result["notes"])
            if lost:
                silently[path.name] = lost
    accepted = len(SAMPLES) - len(refused)
    report = "\n".join(f"{name}: {why}" for name, why in sorted(refused.items()))
    print(f"{accepted}/{len(SAMPLES)} accepted; refused:\n{report}")
    assert accepted / len(SAMPLES) >= 0.95, f"{accepted}/{len(SAMPLES)} accepted:\n{report}"
    assert silently == {}
    # what is refused says where and why, one line per problem
    for name, why in refused.items():
        assert all(line.startswith((f"{name}:", "service ")) for line in why.splitlines()), why
    assert not ddaemon.containers(all=True)  # a dry run starts nothing
