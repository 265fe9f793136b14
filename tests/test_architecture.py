"""The layout keeps its promises: no import cycles (of modules or of folders), the core never imports the
UI nor draws or prints, every rule registered."""

from __future__ import annotations

import ast
import importlib
import itertools
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


def imports(name: str, path: Path, known: dict[str, Path], *, type_only: bool = False) -> set[str]:
    """Every package module this one imports at run time (module level or inside functions); with
    `type_only`, the imports under `if TYPE_CHECKING:` too (they never run)."""
    tree = ast.parse(path.read_text())
    skip = set() if type_only else _type_checking_lines(tree)
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


def graph(*, type_only: bool = False) -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known, type_only=type_only) for name, path in known.items()}


def folder(name: str) -> str:
    """A module's node in the folder graph: its first-level folder (image, registry, kata, rules, k8s,
    ...), or the top-level module itself (scan, writing, ...); the package's __init__ is `kata_imagefix`."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def folder_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, targets in edges.items():
        out.setdefault(folder(name), set()).update(folder(t) for t in targets if folder(t) != folder(name))
    return out


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its nodes, the first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def _why(edges: dict[str, set[str]], cycle: list[str]) -> str:
    """Each step of a folder cycle with the module imports that make it."""
    steps = []
    for a, b in itertools.pairwise(cycle):
        pairs = sorted(f"{m} -> {t}" for m, targets in edges.items() if folder(m) == a
                       for t in targets if folder(t) == b)
        steps.append(f"{a} -> {b} ({', '.join(pairs[:3])})")
    return "; ".join(steps)


# Folder edges made only by `if TYPE_CHECKING:` imports that would close a folder cycle, each with why it
# stays: (from folder, to folder) -> reason. None now (rules/pod_subject.py's rules -> k8s went when the
# workload model moved to model/workload.py); none at run time (test_no_folder_cycles).
TYPE_ONLY_BACK_EDGES: dict[tuple[str, str], str] = {}


def test_no_folder_cycles():
    """#24: the package's folders (and top-level modules) as nodes, an edge where any module of one
    imports a module of the other at run time: module-level imports and imports inside functions both
    count (a lazy import is still a dependency); only `if TYPE_CHECKING:` imports do not (they never run,
    and are checked apart below)."""
    edges = graph()
    cycle = find_cycle(folder_graph(edges))
    assert cycle is None, "folder import cycle: " + _why(edges, cycle or [])


def test_type_only_imports_close_no_folder_cycle_but_the_listed_ones():
    """With `if TYPE_CHECKING:` imports counted too, the only folder cycles are those
    TYPE_ONLY_BACK_EDGES names with their reason; an entry no longer needed must go."""
    edges = graph(type_only=True)
    folders = folder_graph(edges)
    run_time = folder_graph(graph())
    for (a, b), reason in TYPE_ONLY_BACK_EDGES.items():
        assert b in folders.get(a, set()) and b not in run_time.get(a, set()), \
            f"{a} -> {b} is listed ({reason}) but is no type-only edge any more: drop it from the list"
        folders[a].discard(b)
        assert find_cycle({**folders, a: {b}}) is not None, \
            f"{a} -> {b} is listed but closes no cycle: drop it from the list"
    cycle = find_cycle(folders)
    assert cycle is None, "folder import cycle through a TYPE_CHECKING import: " + _why(edges, cycle or [])


def test_the_folder_cycle_check_sees_a_lazy_import(tmp_path):
    edges = {"kata_imagefix.a.x": {"kata_imagefix.b.y"}, "kata_imagefix.b.y": {"kata_imagefix.a.z"},
             "kata_imagefix.a.z": set()}
    assert find_cycle(folder_graph(edges)) == ["a", "b", "a"]
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from .other import thing\n")
    known = {"kata_imagefix.pkg.sample": sample, "kata_imagefix.pkg.other": sample}
    assert imports("kata_imagefix.pkg.sample", sample, known) == {"kata_imagefix.pkg.other"}


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


UI_LIBRARIES = ("click", "rich")


def _ui_uses(path: Path) -> list[str]:
    """Where a module draws or prints itself: an import of click or rich (anywhere, TYPE_CHECKING too),
    a call of the print() builtin."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        found += [f"{path.name}:{node.lineno}: imports {n}" for n in names
                  if n.split(".")[0] in UI_LIBRARIES]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(f"{path.name}:{node.lineno}: print()")
    return found


def test_only_the_command_line_and_the_formatters_draw_or_print():
    """#24: the core reports through image/progress (byte progress, notes, the engine's steps) and returns
    results; what the user sees is drawn by cli/ and output/ alone."""
    drawing = {name: hits for name, path in modules().items() if not name.startswith(UI)
               and (hits := _ui_uses(path))}
    assert drawing == {}, drawing


def test_the_ui_check_sees_each_way_of_drawing(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import click\nimport rich.console\nfrom rich.progress import Progress\n"
                      "def f():\n    from click import echo\n    print('x')\n"
                      "from .click import thing\nconsole.print('y')\nimport clickhouse\n")
    assert [hit.split(":")[1] for hit in _ui_uses(sample)] == ["1", "2", "3", "5", "6"]


def test_every_rule_module_is_registered_and_documented():
    from kata_imagefix.rules import MODULES, catalogue

    CATALOGUE = catalogue()
    files = sorted((PACKAGE / "rules").glob("kif[0-9][0-9][0-9]_*.py"))
    assert files
    listed = {module: target for target, modules in MODULES.items() for module in modules}
    assert sorted(listed) == [path.stem for path in files], "rules/__init__.py's MODULES lists each file"
    for path in files:
        rule_id = "KIF" + re.match(r"kif(\d{3})_", path.name).group(1)
        module = importlib.import_module(f"kata_imagefix.rules.{path.stem}")
        assert rule_id in CATALOGUE, f"{path.name} is not registered (add it to rules/__init__.py MODULES)"
        assert CATALOGUE[rule_id].target == listed[path.stem], f"{path.name} is listed under another target"
        assert CATALOGUE[rule_id].func.__module__ == module.__name__
        assert path.read_text().count(f'"{rule_id}"') == 1, f"{path.name} names its id more than once"
        assert CATALOGUE[rule_id].doc.splitlines()[0], f"{rule_id} has no docs"


# The package top holds only what every folder may use; a new module here is a decision, named here.
TOP_MODULES = {
    "__init__.py", "__main__.py",
    "errors.py",  # the one error type
    "fileio.py", "writing.py",  # the atomic replace and the one write policy over it
    "diffing.py",  # --diff of a text kept as its edits (k8s/fixing.py's FixedManifest): no whole-text diff
    "settings.py", "sizes.py",  # the config file; sizes in and out
    "scan.py",  # runs the rules over a subject
    "templating.py",  # the Jinja environment the Dockerfiles (fix/) and the HTML report (output/) share
}


def test_the_package_top_holds_only_the_shared_modules():
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == TOP_MODULES, f"new: {sorted(top - TOP_MODULES)}, gone: {sorted(TOP_MODULES - top)}"


def test_the_readme_architecture_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme[readme.index("## Architecture"):]
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" or relative.startswith("rules/kif"):
            continue
        assert f"`{relative}`" in section or f"`{path.name}`" in section, f"README misses {relative}"


def test_the_registry_client_imports_nothing_from_image():
    """The HTTP client returns bytes and descriptors; what the documents mean is image/'s business
    (image/ may use the client, never the other way round: no folder cycle)."""
    IMAGE = "kata_imagefix.image"
    for name, targets in graph().items():
        if name == "kata_imagefix.registry" or name.startswith("kata_imagefix.registry."):
            bad = sorted(t for t in targets if t == IMAGE or t.startswith(IMAGE + "."))
            assert not bad, f"{name} imports {bad}"


# Modules that may write files themselves: the write policy and the atomic replace under it; the layer
# cache writes its own files under ~/.cache (never a user's), with its own temp-and-rename.
WRITERS = {"kata_imagefix.fileio", "kata_imagefix.writing", "kata_imagefix.image.layercache"}


def _direct_writes(path: Path) -> list[str]:
    """Where a module writes a file itself: open()/io.open()/os.fdopen() in a mode that writes,
    os.open() with a writing flag, Path.write_text()/write_bytes() (os.devnull does not count)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        args = [ast.unparse(a) for a in node.args]
        if args and args[0] == "os.devnull":
            continue
        if func.endswith((".write_text", ".write_bytes")):
            found.append(f"{path.name}:{node.lineno}: {func}()")
        elif func in ("open", "io.open", "os.fdopen"):
            modes = [a for a in node.args[1:2]] + [k.value for k in node.keywords if k.arg == "mode"]
            if any(isinstance(m, ast.Constant) and isinstance(m.value, str) and set(m.value) & set("wax+")
                   for m in modes) or any(not isinstance(m, ast.Constant) for m in modes):
                found.append(f"{path.name}:{node.lineno}: {func}({', '.join(args)})")
        elif func == "os.open" and re.search(r"O_(WRONLY|RDWR|CREAT|APPEND|TRUNC)", " ".join(args[1:])):
            found.append(f"{path.name}:{node.lineno}: os.open({', '.join(args)})")
    return found


def test_every_writer_is_on_the_one_write_policy():
    """#24: a command that writes a file does it through kata_imagefix/writing.py (and fileio under it),
    so -o, -o -, --in-place backups, --check, --diff and --force cannot drift apart again."""
    direct = {name: hits for name, path in modules().items() if name not in WRITERS
              and (hits := _direct_writes(path))}
    assert direct == {}, direct
    assert not _direct_writes(PACKAGE / "writing.py")  # the policy itself writes through fileio
    around = sorted(name for name, path in modules().items() if name != "kata_imagefix.writing"
                    for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").endswith("fileio")
                    and "write_atomic" in {a.name for a in node.names})
    assert around == [], f"write_atomic used around the write policy: {around}"


def test_the_write_check_sees_each_kind_of_direct_write(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom pathlib import Path\n"
                      "open('a', 'w')\nopen('b', mode='ab')\nPath('c').write_text('x')\n"
                      "os.open('d', os.O_WRONLY | os.O_CREAT)\nos.fdopen(3, 'wb')\nopen('e')\n"
                      "open('f', 'rb')\nos.open(os.devnull, os.O_WRONLY)\n")
    assert [hit.split(":")[1] for hit in _direct_writes(sample)] == ["3", "4", "5", "6", "7"]
