"""The package graph: no cycles between paasd's packages, and docs/architecture.md shows
the graph the code has (regenerate the block with `python -m tests.unit.test_package_graph`)."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- package-graph -->", "<!-- /package-graph -->"


def package_graph() -> dict[str, set[str]]:
    """paasd.X → the paasd packages it imports (loose modules count as packages)."""
    graph = grimp.build_graph("paasd")

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        src = package(module)
        if src == "paasd":
            continue
        edges.setdefault(src, set())
        for imported in graph.find_modules_directly_imported_by(module):
            dst = package(imported)
            if dst != src and dst.startswith("paasd.") and imported.startswith("paasd"):
                edges[src].add(dst)
    return edges


def render(edges: dict[str, set[str]]) -> str:
    width = max(len(p) for p in edges) - len("paasd.")
    lines = [f"{src.removeprefix('paasd.'):<{width}} → "
             + (", ".join(d.removeprefix("paasd.") for d in sorted(dsts)) or "—")
             for src, dsts in sorted(edges.items())]
    return "\n".join(["```", *lines, "```"])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_cycles_between_packages() -> None:
    assert cycles(package_graph()) == []


def test_the_architecture_doc_shows_the_graph_the_code_has() -> None:
    text = DOC.read_text()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    assert m, f"{DOC} has no {BEGIN} block"
    assert m.group(1) == render(package_graph()), (
        "docs/architecture.md's package graph is out of date: run "
        "`python -m tests.unit.test_package_graph` and commit the result")


if __name__ == "__main__":
    text = DOC.read_text()
    block = f"{BEGIN}\n{render(package_graph())}\n{END}"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text,
                      flags=re.S)
    else:
        text += "\n" + block + "\n"
    DOC.write_text(text)
    print(block)
