"""Import structure: no cycle inside genad, and the layering of docs/architecture.md.

Every module under ``src/genad`` is parsed with :mod:`ast` (nothing is imported), and each
import of a ``genad`` module is an edge, wherever it is written: at the module's top, in a
function (a lazy import is still a dependency), as ``from genad import x`` (the submodule
``genad.x`` when there is one, else the package) or as a relative import. Imports inside
``if TYPE_CHECKING:`` never run and are left out; so are names that the package resolves
lazily through :func:`importlib.import_module`, which are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import genad

SRC = Path(genad.__file__).resolve().parent

#: helpers any module may import: they import nothing of genad's above them
LEAVES = {"genad.errors", "genad._io", "genad._text", "genad._params", "genad.bundle_schema"}

#: cycles known and waiting for their fix, as sets of modules; a cycle listed here that
#: no longer exists fails the test, so the list only shrinks
KNOWN_CYCLES: list[frozenset[str]] = []

#: module (or package prefix) -> what it must not import, after docs/architecture.md
LAYERS: dict[str, tuple[str, ...]] = {
    "genad.bundle": ("genad", "genad.detector", "genad.estimators", "genad.data",
                     "genad.registry"),
    "genad.nets": ("genad", "genad.detector", "genad.estimators", "genad.data",
                   "genad.models", "genad.training", "genad.runtime", "genad.bundle",
                   "genad.registry", "genad.calibration", "genad.cli", "genad.report"),
    "genad.models": ("genad", "genad.data", "genad.detector", "genad.estimators",
                     "genad.training", "genad.cli", "genad.report"),
    "genad.data": ("genad", "genad.detector", "genad.estimators", "genad.models",
                   "genad.training", "genad.cli", "genad.report"),
}


def module_name(path: Path, root: Path = SRC) -> str:
    """``genad.data.base`` for ``src/genad/data/base.py``; a package for its ``__init__``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = SRC) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imports_of(name: str, path: Path, known: set[str], top: str = "genad") -> set[str]:
    """The ``top`` modules that module ``name`` (at ``path``) imports."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[:-(node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # "from pkg import x": the submodule pkg.x when there is one, else pkg itself
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem
                       for a in node.names]
        out.update(t for t in targets if t == top or t.startswith(top + "."))
    out.discard(name)
    return out


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (only modules that exist)."""
    found = modules(root)
    known = set(found)
    top = root.name
    graph = {}
    for name, path in found.items():
        targets = set()
        for t in imports_of(name, path, known, top):
            # "import genad.x.y" names a module; an attribute path falls back to its module
            while t not in known and "." in t:
                t = t.rpartition(".")[0]
            if t in known and t != name:
                targets.add(t)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules, as one cycle through it.

    Tarjan's algorithm finds the groups; within a group a breadth-first search gives the
    shortest path back to its first module, so the report names real import chains.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    found = []
    for group in sorted(groups):
        members, start = set(group), group[0]
        previous: dict[str, str] = {}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v] & members):
                if w == start:
                    chain = [v]
                    while chain[-1] != start:
                        chain.append(previous[chain[-1]])
                    found.append([*reversed(chain), start])
                    queue = []
                    break
                if w not in previous:
                    previous[w] = v
                    queue.append(w)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """``"a imports b"`` for every import that :data:`LAYERS` forbids."""
    bad = []
    for name, targets in sorted(graph.items()):
        for layer, forbidden in LAYERS.items():
            if not _within(name, layer):
                continue
            for t in sorted(targets - LEAVES):
                if any(t == f if f == "genad" else _within(t, f) for f in forbidden) and (
                        not _within(t, layer)):
                    bad.append(f"{name} imports {t}")
    return bad


# ------------------------------------------------------------------ the tests
def test_genad_has_no_import_cycle():
    found = cycles(import_graph())
    new = [c for c in found if frozenset(c) not in KNOWN_CYCLES]
    assert new == [], "import cycles inside genad:\n" + "\n".join(" -> ".join(c) for c in new)
    gone = [sorted(k) for k in KNOWN_CYCLES if k not in {frozenset(c) for c in found}]
    assert gone == [], f"no longer cycles, remove them from KNOWN_CYCLES: {gone}"


def test_layers_import_nothing_above_them():
    bad = layering_violations(import_graph())
    assert bad == [], "imports against docs/architecture.md:\n" + "\n".join(bad)


# ------------------------------------------- the checks themselves (a fake package)
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "genad"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_every_form_of_import_is_an_edge(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "import genad.b\n",
        "b.py": "def f():\n    from genad import c\n",
        "c.py": "from . import d\n",
        "d.py": "from .sub.e import thing\n",
        "sub/__init__.py": "",
        "sub/e.py": "from .. import a\nfrom ..errors import X\n",
        "errors.py": "",
        "pkguser.py": "import genad\nfrom genad import __version__\n",
    })
    graph = import_graph(root)
    assert graph["genad.a"] == {"genad.b"}
    assert graph["genad.b"] == {"genad.c"}
    assert graph["genad.c"] == {"genad.d"}
    assert graph["genad.d"] == {"genad.sub.e"}
    assert graph["genad.sub.e"] == {"genad.a", "genad.errors"}
    assert graph["genad.pkguser"] == {"genad"}
    assert cycles(graph) == [["genad.a", "genad.b", "genad.c", "genad.d", "genad.sub.e",
                              "genad.a"]]


def test_type_checking_imports_are_not_edges(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from genad.b import B\n"
                "import genad.c\n",
        "b.py": "import genad.a\n",
        "c.py": "",
    })
    graph = import_graph(root)
    assert graph["genad.a"] == {"genad.c"}
    assert cycles(graph) == []


@pytest.mark.parametrize("source,target,bad", [
    ("bundle.py", "detector.py", True),
    ("bundle.py", "bundle_schema.py", False),
    ("bundle.py", "errors.py", False),
    ("nets/mlp.py", "models/base.py", True),
    ("models/vae.py", "data/base.py", True),
    ("models/vae.py", "nets/mlp.py", False),
    ("data/tabular.py", "detector.py", True),
    ("data/tabular.py", "data/base.py", False),
])
def test_layering_check_flags_imports_from_above(tmp_path, source, target, bad):
    files = {rel: "" for rel in ("__init__.py", "nets/__init__.py", "models/__init__.py",
                                 "data/__init__.py", source, target)}
    files[source] = "import genad." + target.removesuffix(".py").replace("/", ".") + "\n"
    graph = import_graph(_package(tmp_path, files))
    assert bool(layering_violations(graph)) is bad
