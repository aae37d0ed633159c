from __future__ import annotations

import pytest

from paasd.spec.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("6s", 6), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), (10, 10), (0.25, 0.25),
])
def test_parse(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "6", "six seconds", "1x", "-1s", -3, True])
def test_reject(bad: str | int) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_round_trips() -> None:
    for value in ("6s", "1m", "2h", "500ms"):
        assert format_duration(parse_duration(value)) == value
