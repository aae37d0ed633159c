"""Knative's retry, back-off and dead-letter rules as tables (Knative's own cases from
pkg/kncloudevents/retries_test.go where they exist)."""

from __future__ import annotations

import pytest

from paasd.eventing.delivery import (
    DeadLetter,
    Delivered,
    Policy,
    Retry,
    backoff,
    decide,
    policy,
    retry_after_seconds,
    retryable,
)
from paasd.eventing.objects import Delivery

# TestSelectiveRetry
SELECTIVE = [(None, True), (-1, True), (100, False), (102, False), (200, False),
             (201, False), (202, False), (300, False), (301, False), (400, False),
             (401, False), (403, False), (404, True), (408, True), (409, True), (429, True),
             (500, True), (501, True), (503, True)]


@pytest.mark.parametrize(("status", "retry"), SELECTIVE)
def test_selective_retry(status: int | None, retry: bool) -> None:
    assert retryable(status) is retry


# TestRetryConfigFromDeliverySpec: Backoff(i) for i = 1..; go-retryablehttp calls it with
# the zero-based attempt, so the wait before retry k is Backoff(k - 1).
@pytest.mark.parametrize(("kind", "delay", "backoffs"), [
    ("linear", "PT2.5S", [2.5, 5.0, 7.5, 10.0, 12.5]),
    ("exponential", "PT1.5S", [3.0, 6.0, 12.0, 24.0, 48.0]),
    ("exponential", "PT0.5S", [1.0, 2.0, 4.0, 8.0, 16.0]),
])
def test_knative_backoff_table(kind: str, delay: str, backoffs: list[float]) -> None:
    p = policy(Delivery(retry=5, backoff_policy=kind, backoff_delay=delay))
    assert [backoff(p, k + 1) for k in range(1, 6)] == backoffs
    assert backoff(p, 1) == (p.backoff_delay if kind == "exponential" else 0.0)


def test_decisions_after_each_attempt() -> None:
    p = Policy(retry=2, backoff_policy="exponential", backoff_delay=0.1)
    assert decide(p, 1, 202) == Delivered()
    assert decide(p, 1, 500) == Retry(0.1)
    assert decide(p, 2, None) == Retry(0.2)
    assert decide(p, 3, 500) == DeadLetter(500)  # retries run out
    assert decide(p, 1, 400) == DeadLetter(400)  # not retryable: straight to dead letter
    assert decide(p, 1, 302) == DeadLetter(302)
    assert decide(Policy(), 1, 503) == DeadLetter(503)  # no retries configured


def test_retry_after_only_with_retry_after_max_and_capped() -> None:
    p = Policy(retry=3, backoff_policy="linear", backoff_delay=1.0)
    assert decide(p, 1, 429, "30") == Retry(0.0)  # opt-in: ignored without retryAfterMax
    capped = Policy(retry=3, backoff_policy="linear", backoff_delay=1.0, retry_after_max=10)
    assert decide(capped, 1, 429, "30") == Retry(10.0)
    assert decide(capped, 1, 503, "3") == Retry(3.0)
    assert decide(capped, 3, 503, "0") == Retry(2.0)  # the back-off is longer
    assert decide(capped, 1, 500, "30") == Retry(0.0)  # only 429 and 503
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert retry_after_seconds("soon", 0.0) == 0.0


def test_trigger_delivery_replaces_the_brokers() -> None:
    broker = Delivery(retry=5)
    assert policy(None, broker).retry == 5
    assert policy(Delivery(retry=1), broker).retry == 1
    assert policy(None, None) == Policy()
