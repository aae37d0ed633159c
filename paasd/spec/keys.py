"""Names of things: a service or a revision is known by its namespace and name.

One small type instead of `"namespace/name"` strings built (and split) by
hand all over the daemon. A key is a tuple, so it hashes and compares as
cheaply as the string did; `str(key)` is the familiar `namespace/name`, used
in messages and as the store's state keys.
"""

from __future__ import annotations

from typing import NamedTuple


class ServiceKey(NamedTuple):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def revision(self, name: str) -> RevisionKey:
        """A revision of this service's namespace."""
        return RevisionKey(self.namespace, name)

    @classmethod
    def parse(cls, text: str) -> ServiceKey:
        namespace, _, name = text.partition("/")
        return cls(namespace, name)


class RevisionKey(NamedTuple):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> RevisionKey:
        namespace, _, name = text.partition("/")
        return cls(namespace, name)


__all__ = ["RevisionKey", "ServiceKey"]
