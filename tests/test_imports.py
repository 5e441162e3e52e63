"""The package's imports run one way (docs/architecture.md): no cycle, and each module imports
only from its own layer or the layers below it.

Every module under rnnedge/ is parsed with `ast` (nothing is imported): top-level imports,
function-local ones and those under `if TYPE_CHECKING:` alike, relative and absolute. The
package's own __init__ files are modules like any other; the implicit import of a parent package
that Python performs before a submodule is not counted (it is the package's public face, not a
dependency of the code).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "rnnedge"

# Lowest first. A module may import from its own layer and from any layer listed before it,
# except the layers in ONLY, which may import just the layers named there. A module's layer is
# found by the longest matching name: "quant" holds rnnedge.quant and every rnnedge.quant.*.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("_version", "errors", "files")),  # no rnnedge import but each other
    ("ir", ("ir",)),  # the layer types, float and integer, and their validation
    ("oracles", ("reference", "fixedpoint")),  # float reference, bit-exact integer reference
    ("quant", ("quant",)),  # float IR -> integer IR: arithmetic, calibration, precision policy
    ("clib", ("_rnnedge",)),  # the compiled C library (cffi): the blob's one judge, and the runtime
    ("blob", ("blob",)),  # spec (codes of rnnedge.h), metadata schema, write, read, show
    ("runtime", ("model", "_build")),  # rnnedge.load, Model, Stream over the C library
    ("converter", ("converter",)),  # ONNX -> IR: a branch on base and ir only
    ("tools", ("", "conversion", "cli", "console", "demo", "export_c", "verify", "measure", "ort_step",
               "examples", "__main__")),  # fmt: skip  # "" is rnnedge/__init__.py
]
ONLY = {"converter": {"base", "ir", "converter"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in PKG.rglob("*.py")}
    assert "rnnedge.errors" in found, f"no package at {PKG}"
    return found


KNOWN_EXTENSIONS = {"rnnedge._rnnedge"}  # the compiled cffi module (rnnedge/_build.py makes it)


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported rnnedge module, line) for every import statement in the file, at any depth."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []

    def target(mod: str) -> str | None:
        if mod in known:
            return mod
        return None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                mod = alias.name
                while mod and mod not in known:  # `import rnnedge.blob.spec as s` -> that module
                    mod = mod.rpartition(".")[0]
                if mod.split(".")[0] == "rnnedge" and mod:
                    out.append((mod, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "rnnedge":
                continue
            for alias in node.names:
                sub = target(f"{base}.{alias.name}")  # `from . import fixedpoint`: the module
                out.append((sub or base, node.lineno))
    return out


def graph() -> dict[str, dict[str, int]]:
    mods = modules()
    known = set(mods) | KNOWN_EXTENSIONS
    g: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        edges = g.setdefault(name, {})
        for mod, line in imports(name, path, known):
            if mod != name:
                edges.setdefault(mod, line)
    return g


def layer_of(name: str) -> str:
    rel = name[len("rnnedge.") :] if name.startswith("rnnedge.") else ""
    best, best_len = None, -1
    for layer, prefixes in LAYERS:
        for p in prefixes:
            if (rel == p or rel.startswith(p + ".") or (p == "" and rel == "")) and len(p) > best_len:
                best, best_len = layer, len(p)
    assert best is not None, f"{name} is in no layer: add it to LAYERS in tests/test_imports.py"
    return best


def cycles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated last) per strongly connected component of
    more than one module (Tarjan), each as a shortest cycle through the component's first member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    out = []
    for comp in comps:
        members, start = set(comp), comp[0]
        prev: dict[str, str] = {}
        frontier, cycle = [start], None
        while frontier and cycle is None:  # breadth-first back to start inside the component
            nxt = []
            for v in frontier:
                for w in sorted(g.get(v, {})):
                    if w == start:
                        path = [v]
                        while path[-1] != start:
                            path.append(prev[path[-1]])
                        cycle = [start, *reversed(path[:-1]), start]
                        break
                    if w in members and w not in prev and w != start:
                        prev[w] = v
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        out.append([f"{len(comp)} modules: {', '.join(comp)}; e.g. " + " -> ".join(cycle or comp)])
    return out


def test_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycle(s) in rnnedge/:\n" + "\n".join(c[0] for c in found)


def test_imports_follow_the_layers() -> None:
    order = [layer for layer, _ in LAYERS]
    g = graph()
    bad = []
    for mod, edges in sorted(g.items()):
        mine = layer_of(mod)
        allowed = ONLY.get(mine, set(order[: order.index(mine) + 1]))
        for dep, line in sorted(edges.items()):
            theirs = layer_of(dep)
            if theirs not in allowed:
                bad.append(f"{mod} (layer {mine}) imports {dep} (layer {theirs}) at line {line}")
    assert not bad, "imports against the layer order " + " -> ".join(order) + ":\n" + "\n".join(bad)


def test_every_module_has_a_layer() -> None:
    for mod in graph():
        layer_of(mod)
