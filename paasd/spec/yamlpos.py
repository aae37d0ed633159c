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


_scalars = yaml.SafeLoader


def _convert(node: yaml.Node, path: str, out: Located, loader: yaml.SafeLoader) -> Any:
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
            result[key] = _convert(value_node, child, out, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, f"{path}[{i}]", out, loader) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node)


def load_documents(text: str, source: str = "<input>") -> list[Located]:
    """Every non-empty document of a (possibly multi-document) YAML stream."""
    loader = yaml.SafeLoader(text)
    docs: list[Located] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            located = Located(value=None, source=source, start_line=node.start_mark.line + 1)
            located.value = _convert(node, "", located, loader)
            if located.value is not None:
                docs.append(located)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidSpec(f"{source}{line}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"{source}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return docs
