"""Property-based tests: a bounded budget in CI, more on demand.

`PAASD_FUZZ_EXAMPLES` (default 150) sets how many examples each property tries;
the examples are derandomised in CI (a failure reproduces), random elsewhere.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "paasd", max_examples=int(os.environ.get("PAASD_FUZZ_EXAMPLES", "150")), deadline=None,
    derandomize=bool(os.environ.get("CI") or os.environ.get("PAASD_STRICT_TIERS")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("paasd")
