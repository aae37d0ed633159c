"""Knative's Route on one box: traffic resolution, rollouts, rollback and GC — pure."""

from .decisions import (
    RolloutStep,
    begin_rollout,
    check_traffic,
    gc_candidates,
    pinned,
    rollback_target,
    rollout_duration,
    step_rollout,
)
from .resolve import (
    Resolved,
    Rollout,
    resolve,
    rollout_done,
    rollout_percent,
    rollout_schedule,
    tags,
    weights,
)

__all__ = [
    "Resolved",
    "Rollout",
    "RolloutStep",
    "begin_rollout",
    "check_traffic",
    "gc_candidates",
    "pinned",
    "resolve",
    "rollback_target",
    "rollout_done",
    "rollout_duration",
    "rollout_percent",
    "rollout_schedule",
    "step_rollout",
    "tags",
    "weights",
]
