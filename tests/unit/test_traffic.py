"""Route computation: splits, tags, gradual rollouts at given times; traffic validation."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from paasd.dataplane import Route, Target
from paasd.errors import InvalidSpec
from paasd.spec.knative import service_from_document, service_to_document
from paasd.spec.model import TrafficTarget
from paasd.spec.yamlpos import Located, load_documents
from paasd.traffic.resolve import (
    Resolved,
    Rollout,
    resolve,
    rollout_done,
    rollout_percent,
    rollout_schedule,
    tags,
    weights,
)

LATEST = TrafficTarget(percent=100, latest_revision=True)


def test_latest_revision_is_the_latest_ready_one() -> None:
    out = resolve((LATEST,), latest_ready="a-00001", latest_created="a-00002", rollout=None,
                  now=0)
    assert out == [Resolved("a-00001", 100, latest=True)]


def test_before_anything_is_ready_the_latest_created_is_held_for() -> None:
    assert weights(resolve((LATEST,), None, "a-00001", None, 0)) == {"a-00001": 100}


def test_split_and_tags() -> None:
    targets = (TrafficTarget(90, "a-00001", tag="blue"),
               TrafficTarget(10, latest_revision=True),
               TrafficTarget(0, "a-00003", tag="green"))
    out = resolve(targets, "a-00002", "a-00003", None, 0)
    assert weights(out) == {"a-00001": 90, "a-00002": 10}
    assert tags(out) == {"blue": "a-00001", "green": "a-00003"}  # 0 % but reachable by tag


def test_weighted_pick_over_many_requests() -> None:
    route = Route("ns/a", "a", (Target("ns/a-00001", 90), Target("ns/a-00002", 10)))
    rng = random.Random(1)
    counts = Counter(route.pick(rng) for _ in range(2000))
    assert abs(counts["ns/a-00002"] / 2000 - 0.10) < 0.03


def test_rollout_schedule_is_one_percent_then_equal_steps() -> None:
    schedule = rollout_schedule(60)
    assert schedule[0] == (0.0, 1) and schedule[-1] == (60.0, 100)
    assert len(schedule) == 20
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(schedule)]
    assert max(gaps) - min(gaps) < 0.01  # equal steps in time
    percents = [p for _, p in schedule]
    assert percents == sorted(percents)
    short = rollout_schedule(1)
    assert short == [(0.0, 1), (1.0, 100)]


@pytest.mark.parametrize(("after", "percent"), [(0, 1), (3, 1), (3.2, 6), (31.6, 53), (59.9, 95),
                                                 (60, 100)])
def test_rollout_percent_at_given_times(after: float, percent: int) -> None:
    rollout = Rollout("a-00001", "a-00002", started_at=1000, duration=60)
    assert rollout_percent(rollout, 1000 + after) == percent


def test_rollout_splits_the_latest_share() -> None:
    rollout = Rollout("a-00001", "a-00002", started_at=0, duration=60)
    targets = (TrafficTarget(50, "a-00000"), TrafficTarget(50, latest_revision=True))
    out = weights(resolve(targets, "a-00002", "a-00002", rollout, 0))
    assert out == {"a-00000": 50, "a-00001": 49.5, "a-00002": 0.5}
    assert not rollout_done(rollout, 59) and rollout_done(rollout, 60)
    done = weights(resolve(targets, "a-00002", "a-00002", rollout, 60))
    assert done == {"a-00000": 50, "a-00002": 50}


def test_a_failed_rollout_leaves_traffic_on_the_last_good_revision() -> None:
    rollout = Rollout("a-00001", "a-00002", started_at=0, duration=60, failed="crashed")
    assert weights(resolve((LATEST,), "a-00002", "a-00002", rollout, 30)) == {"a-00001": 100}


DOC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - command: [app]
  traffic:
{traffic}"""


def traffic_error(entries: str) -> str:
    with pytest.raises(InvalidSpec) as info:
        service_from_document(load_documents(DOC.format(traffic=entries), "t.yaml")[0])
    return str(info.value)


@pytest.mark.parametrize(("entries", "message"), [
    ("    - revisionName: hello-00001\n      percent: 90\n"
     "    - latestRevision: true\n      percent: 20\n",
     "t.yaml:10: spec.traffic: percents must sum to 100, got 90 (hello-00001) + "
     "20 (@latest) = 110"),
    ("    - latestRevision: true\n      revisionName: hello-00001\n      percent: 100\n",
     "t.yaml:11: spec.traffic[0]: latestRevision: true and revisionName exclude each other; "
     "keep one"),
    ("    - latestRevision: true\n      percent: 100\n      tag: a\n"
     "    - revisionName: hello-00001\n      percent: 0\n      tag: a\n",
     "t.yaml:16: spec.traffic[1].tag: duplicate tag 'a' (also spec.traffic[0])"),
    ("    - latestRevision: true\n      percent: 100\n      tag: Blue_1\n",
     "t.yaml:13: spec.traffic[0].tag: tag 'Blue_1' is not a valid DNS label"),
    ("    - percent: 100\n",
     "t.yaml:11: spec.traffic[0]: name a revision (revisionName) or set latestRevision: true"),
])
def test_bad_traffic_names_the_entry(entries: str, message: str) -> None:
    assert traffic_error(entries).startswith(message)


def test_traffic_round_trips_through_export() -> None:
    entries = ("    - revisionName: hello-00001\n      percent: 90\n      tag: blue\n"
               "    - latestRevision: true\n      percent: 10\n")
    spec = service_from_document(load_documents(DOC.format(traffic=entries), "t")[0])
    assert spec.traffic == (TrafficTarget(90, "hello-00001", tag="blue"),
                            TrafficTarget(10, latest_revision=True))
    assert service_from_document(Located(service_to_document(spec))) == spec
