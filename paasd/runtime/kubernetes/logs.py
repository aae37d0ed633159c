"""`paasctl logs` on the kubernetes runtime: the pods' logs through the API server.

Read with timestamps, so that following is polling "since a moment ago" per pod and
dropping what was already shown; each line is prefixed with its pod, as the local
runtimes prefix theirs with the instance.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import AsyncIterator, Callable

import trio

from .cluster import ApiRefused, ApiUnavailable, Cluster
from .objects import PodState

POLL = 0.5  # how often followed pods are read again


def stamp(raw: bytes) -> tuple[int, int]:
    """An RFC 3339 timestamp with nanoseconds → comparable (seconds, nanoseconds)."""
    text = raw.decode(errors="replace").rstrip("Z")
    whole, _, frac = text.partition(".")
    try:
        secs = calendar.timegm(time.strptime(whole[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return (0, 0)
    return secs, int((frac + "000000000")[:9] or 0)


async def pod_logs(cluster: Cluster, pods: Callable[[], list[PodState]], *, follow: bool,
                   tail: int) -> AsyncIterator[bytes]:
    last: dict[str, tuple[int, int]] = {}  # pod → the newest line shown
    first = True
    while True:
        for pod in pods():
            key = f"{pod.namespace}/{pod.name}"
            seen = last.get(key)
            try:
                if seen is None:
                    data = await cluster.pod_log(pod.namespace, pod.name,
                                                 tail=tail if first else None)
                else:
                    ago = max(1, int(time.time()) - seen[0] + 1)
                    data = await cluster.pod_log(pod.namespace, pod.name, since_seconds=ago)
            except ApiUnavailable as exc:
                yield f"[paasd] cannot read logs: {exc}\n".encode()
                if not follow:
                    return
                continue
            except ApiRefused:  # not started yet, or gone meanwhile: next time
                continue
            out = []
            prefix = f"[{pod.name}] ".encode()
            for line in data.splitlines():
                raw_stamp, _, text = line.partition(b" ")
                when = stamp(raw_stamp)
                if seen is not None and when <= seen:
                    continue
                last[key] = max(last.get(key, when), when)
                out.append(prefix + text + b"\n")
            last.setdefault(key, (0, 0))
            if out:
                yield b"".join(out)
        first = False
        if not follow:
            return
        await trio.sleep(POLL)


__all__ = ["pod_logs", "stamp"]
