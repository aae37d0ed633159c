"""The project's own small exception hierarchy.

Library exceptions are translated at the edge into these, each carrying a
message a user can act on (the httpx lesson): the API turns them into JSON
errors with a status code, the CLI prints them as one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PaasdError(Exception):
    """Base of every error paasd reports to a user."""

    status = 500


class InvalidSpec(PaasdError):
    """A service or config document is not acceptable; nothing was changed."""

    status = 422


class NotFound(PaasdError):
    status = 404


class Conflict(PaasdError):
    status = 409


class ConfigError(PaasdError):
    """One or more problems in a config file, each with file, line and field."""

    status = 422

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def nearest(word: str, choices: Iterable[str]) -> str:
    """A ` (did you mean "x"?)` suffix when a known name is close to `word`."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""
