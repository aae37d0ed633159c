"""When an issued certificate is renewed: a pure decision, tested with a mock clock.

As cert-manager and ACME clients do: well before expiry, at `renew_before` before
`not_after`, but never later than two thirds into its lifetime (a short-lived
certificate is renewed at 2/3 of it), and at once for one already expired.
"""

from __future__ import annotations


def renew_at(not_before: float, not_after: float, renew_before: float) -> float:
    """The moment a certificate valid [not_before, not_after] should be replaced."""
    lifetime = max(0.0, not_after - not_before)
    return not_after - min(renew_before, lifetime / 3)


def renewal_due(not_before: float, not_after: float, now: float, renew_before: float) -> bool:
    return now >= renew_at(not_before, not_after, renew_before)


__all__ = ["renew_at", "renewal_due"]
