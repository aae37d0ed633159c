"""Knative's delivery rules, as plain functions: what to do after each attempt.

Mirrors `knative.dev/eventing/pkg/kncloudevents/retries.go` as its dispatcher runs
it through go-retryablehttp:

- retry on no response (network error, `delivery.timeout`), 404, 408, 409, 429 and
  every 5xx (`SelectiveRetry`); any other non-2xx goes to the dead-letter sink at once;
- at most `retry` retries after the first attempt;
- the wait before retry k (1-based) is Knative's `Backoff(k - 1)`, the zero-based
  attempt number go-retryablehttp passes: exponential `delay × 2^(k-1)`, linear
  `delay × (k-1)`; no policy or no delay: no wait;
- `Retry-After` (seconds or an HTTP date) on a 429 or 503 is honoured only when
  `retryAfterMax` is set (Knative's opt-in), capped by it, and only when longer than
  the back-off;
- a trigger's `delivery`, when it has one, replaces its broker's.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass

from .objects import Delivery, Destination

RETRYABLE_4XX = frozenset({404, 408, 409, 429})


@dataclass(frozen=True)
class Policy:
    retry: int = 0
    backoff_policy: str | None = None
    backoff_delay: float = 0.0
    timeout: float | None = None
    retry_after_max: float | None = None
    dead_letter_sink: Destination | None = None


def policy(trigger: Delivery | None, broker: Delivery | None = None) -> Policy:
    d = trigger if trigger is not None else broker
    if d is None:
        return Policy()
    return Policy(retry=d.retry or 0, backoff_policy=d.backoff_policy,
                  backoff_delay=d.seconds(d.backoff_delay) or 0.0,
                  timeout=d.seconds(d.timeout), retry_after_max=d.seconds(d.retry_after_max),
                  dead_letter_sink=d.dead_letter_sink)


def retryable(status: int | None) -> bool:
    """Knative's SelectiveRetry; None is "no response" (a network error, a timeout)."""
    return status is None or status == -1 or status >= 500 or status in RETRYABLE_4XX


def backoff(p: Policy, retry: int) -> float:
    """Seconds to wait before retry number `retry` (1-based)."""
    attempt = retry - 1  # go-retryablehttp's zero-based attemptNum
    if p.backoff_policy == "exponential":
        return p.backoff_delay * 2.0 ** attempt
    if p.backoff_policy == "linear":
        return p.backoff_delay * attempt
    return 0.0


def retry_after_seconds(value: str | None, now: float) -> float:
    """A Retry-After header as seconds from `now` (0 when absent or unreadable)."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class Retry:
    delay: float


@dataclass(frozen=True)
class DeadLetter:
    status: int | None  # the last attempt's status (None: no response)


Outcome = Delivered | Retry | DeadLetter


def decide(p: Policy, attempts: int, status: int | None, retry_after: str | None = None,
           now: float = 0.0) -> Outcome:
    """After attempt number `attempts` (1-based) answered `status` (None: no response):
    delivered, retry after a delay, or dead-lettered (dropped when there is no sink)."""
    if status is not None and 200 <= status < 300:
        return Delivered()
    if not retryable(status) or attempts > p.retry:
        return DeadLetter(status)
    wait = backoff(p, attempts)
    if p.retry_after_max is not None and status in (429, 503):
        wait = max(wait, min(retry_after_seconds(retry_after, now), p.retry_after_max))
    return Retry(wait)


__all__ = ["DeadLetter", "Delivered", "Outcome", "Policy", "Retry", "backoff", "decide",
           "policy", "retry_after_seconds", "retryable"]
