"""Test tiers whose infrastructure may be missing on a developer's box.

A missing tier skips with a line that says what to install; under CI
(`PAASD_STRICT_TIERS=1`, set by `.ci/run`) the same situation is a failure,
so a green CI run can never hide a tier that silently did not run.
"""

from __future__ import annotations

import os

import pytest


def strict() -> bool:
    return os.environ.get("PAASD_STRICT_TIERS", "") not in ("", "0")


def need(tier: str, available: bool, how: str) -> None:
    """Skip (or, in CI, fail) unless the tier's infrastructure is there."""
    if available:
        return
    msg = f"{tier} tier unavailable: {how}"
    if strict():
        pytest.fail(msg + " (PAASD_STRICT_TIERS=1: missing infrastructure is a failure)")
    pytest.skip(msg)
