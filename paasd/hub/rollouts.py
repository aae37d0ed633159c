"""Gradual rollouts in progress: the one piece of traffic state that changes with time.

Kept in the store (as `rollout/NS/NAME`), so a restarted daemon resumes each
rollout where the clock says it is. The decisions are `paasd.traffic`'s; this
holds what they decided and persists it through the callable it is given.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from ..spec.keys import ServiceKey
from ..traffic import Rollout

Persist = Callable[[str, str | None], None]  # (state key, value or None to delete)


class Rollouts:
    def __init__(self, persist: Persist) -> None:
        self.persist = persist
        self.by_service: dict[ServiceKey, Rollout] = {}
        self.routed_percent: dict[ServiceKey, int] = {}  # the last percent routed

    def __bool__(self) -> bool:
        return bool(self.by_service)

    def get(self, key: ServiceKey) -> Rollout | None:
        return self.by_service.get(key)

    def set(self, key: ServiceKey, rollout: Rollout | None) -> None:
        """Change a service's rollout, and persist it: a restart resumes it."""
        if rollout is None:
            self.routed_percent.pop(key, None)
            if self.by_service.pop(key, None) is not None:
                self.persist(f"rollout/{key}", None)
            return
        self.by_service[key] = rollout
        self.persist(f"rollout/{key}", json.dumps(dataclasses.asdict(rollout)))

    def restore(self, saved: dict[str, str]) -> None:
        for key, blob in saved.items():
            try:
                self.by_service[ServiceKey.parse(key)] = Rollout(**json.loads(blob))
            except (ValueError, TypeError):
                continue
