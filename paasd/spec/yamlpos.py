"""YAML loading that remembers where each value came from.

Errors about a Knative document should name the file and line a user has to
edit, so documents are composed into nodes first and converted by hand,
keeping each path's line number on the side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import InvalidSpec


@dataclass
class Located:
    """A loaded document plus `path → line` for every value in it."""

    value: Any
    lines: dict[str, int] = field(default_factory=dict)
    source: str = "<input>"
    start_line: int = 1

    def where(self, path: str) -> str:
        """`file:line` of the nearest located ancestor of `path`."""
        probe = path
        while probe:
            if probe in self.lines:
                return f"{self.source}:{self.lines[probe]}"
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return f"{self.source}:{self.start_line}"


# Limits that make a hostile document fail fast with a message, never hang or exhaust the
# daemon: a Knative document is a few dozen values, a big multi-document apply a few
# hundred thousand.
MAX_DEPTH = 64  # nesting of mappings and sequences
MAX_VALUES = 500_000  # values in the stream as written
MAX_EXPANDED = 200_000  # values once aliases are expanded ("billion laughs")
MAX_DOCUMENTS = 2_000

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Budget:
    __slots__ = ("left", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.left = MAX_EXPANDED

    def take(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise InvalidSpec(
                f"{self.source}:{node.start_mark.line + 1}: the document expands to more than "
                f"{MAX_EXPANDED} values (YAML aliases repeating a large value?); refused")


def _convert(node: yaml.Node, path: str, out: Located, loader: yaml.SafeLoader,
             budget: _Budget) -> Any:
    budget.take(node)
    out.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                raise InvalidSpec(
                    f"{out.source}:{key_node.start_mark.line + 1}: "
                    f"{path or '<document>'}: keys must be strings, got {key!r}"
                )
            child = f"{path}.{key}" if path else key
            if key in result:
                raise InvalidSpec(
                    f"{out.source}:{key_node.start_mark.line + 1}: {child}: duplicate key"
                )
            out.lines[child] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, child, out, loader, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, f"{path}[{i}]", out, loader, budget)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node)


def _check_shape(text: str, source: str) -> None:
    """Depth, size and document count from the event stream (the parser is iterative, the
    composer is not): refuse a hostile stream before anything recursive sees it."""
    depth = values = documents = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidSpec(f"{source}:{line}: nested more than "
                                  f"{MAX_DEPTH} levels deep; refused")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > MAX_DOCUMENTS:
                raise InvalidSpec(f"{source}:{line}: more than "
                                  f"{MAX_DOCUMENTS} documents in one apply; split the file")
        if isinstance(event, yaml.NodeEvent):
            values += 1
            if values > MAX_VALUES:
                raise InvalidSpec(f"{source}:{line}: more than "
                                  f"{MAX_VALUES} values; refused (split the file)")


def load_documents(text: str, source: str = "<input>") -> list[Located]:
    """Every non-empty document of a (possibly multi-document) YAML stream."""
    docs: list[Located] = []
    loader: yaml.SafeLoader | None = None
    try:
        _check_shape(text, source)
        loader = _Loader(text)
        budget = _Budget(source)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            located = Located(value=None, source=source, start_line=node.start_mark.line + 1)
            located.value = _convert(node, "", located, loader, budget)
            if located.value is not None:
                docs.append(located)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidSpec(f"{source}{line}: not valid YAML: {exc.problem}") from None
    except yaml.reader.ReaderError as exc:
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise InvalidSpec(f"{source}: not valid YAML: the control character {char!r} (at "
                          f"character {exc.position}) is not allowed; remove it") from None
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"{source}: not valid YAML: {exc}") from None
    except (ValueError, OverflowError) as exc:  # a scalar the constructor cannot take
        raise InvalidSpec(f"{source}: not valid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return docs
