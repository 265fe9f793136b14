"""The layout keeps its promises: no import cycles, the core never imports the UI, every rule registered."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kata_imagefix"
UI = ("kata_imagefix.cli", "kata_imagefix.output", "kata_imagefix.__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every package module this one imports at run time (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", 0) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                out.add(child if child in known else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start)


def test_the_core_never_imports_the_command_line_or_the_formatters():
    for name, targets in graph().items():
        if name.startswith(UI):
            continue
        bad = sorted(t for t in targets if t.startswith(UI))
        assert not bad, f"{name} imports {bad}"


def test_every_rule_module_is_registered_and_documented():
    from kata_imagefix.rules import CATALOGUE

    files = sorted((PACKAGE / "rules").glob("kif[0-9][0-9][0-9]_*.py"))
    assert files
    for path in files:
        rule_id = "KIF" + re.match(r"kif(\d{3})_", path.name).group(1)
        module = importlib.import_module(f"kata_imagefix.rules.{path.stem}")
        assert rule_id in CATALOGUE, f"{path.name} is not registered (add it to rules/__init__.py)"
        assert CATALOGUE[rule_id].func.__module__ == module.__name__
        assert path.read_text().count(f'"{rule_id}"') == 1, f"{path.name} names its id more than once"
        assert CATALOGUE[rule_id].doc.splitlines()[0], f"{rule_id} has no docs"


def test_at_most_eight_modules_at_the_package_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top


def test_the_readme_architecture_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme[readme.index("## Architecture"):]
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" or relative.startswith("rules/kif"):
            continue
        assert f"`{relative}`" in section or f"`{path.name}`" in section, f"README misses {relative}"
