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
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "rnnedge"

# Lowest first. A module may import from its own layer and from any layer listed before it,
# except the layers in ONLY, which may import just the layers named there. A module's layer is
# found by the longest matching name: "quant" holds rnnedge.quant and every rnnedge.quant.*.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("_version", "errors", "files", "progress")),  # no rnnedge import but each other
    ("ir", ("ir",)),  # the layer types, float and integer, and their validation
    ("oracles", ("reference", "fixedpoint")),  # float reference, bit-exact integer reference
    ("quant", ("quant",)),  # float IR -> integer IR: arithmetic, calibration, precision policy
    ("clib", ("_clib", "_rnnedge")),  # the compiled C library (cffi), loaded on first use: the blob's one judge, and the runtime
    ("blob", ("blob",)),  # spec (codes of rnnedge.h), metadata schema, write, read, show
    ("runtime", ("model", "_memory", "_views", "_build")),  # rnnedge.load, Model, Stream over the C library
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


def test_only_the_runtime_loader_imports_the_compiled_module() -> None:
    """`import rnnedge` and every pure-Python module work without the compiled extension: only
    rnnedge/_clib.py imports it, inside the function the runtime calls when a Model is made
    (test_the_package_imports_and_converts_without_its_build runs that)."""
    found = sorted(
        (mod, line)
        for mod, edges in graph().items()
        for dep, line in edges.items()
        if dep == "rnnedge._rnnedge"
    )
    assert [mod for mod, _ in found] == ["rnnedge._clib"], found
    tree = ast.parse((PKG / "_clib.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("_rnnedge" in ast.dump(n) for n in top), "rnnedge/_clib.py imports the extension at import time"


NO_BUILD = r"""
import sys, warnings


class NoBuild:  # as Python reports a module that is not there (an editable install's finder
    @staticmethod  # would otherwise find the checkout's build for a copy of the package)
    def find_spec(name, path=None, target=None):
        if name == "rnnedge._rnnedge":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoBuild)
"""

WITHOUT_BUILD = NO_BUILD + r"""
import rnnedge
assert rnnedge.__file__.startswith(sys.argv[1]), rnnedge.__file__  # the copy, not the checkout
import rnnedge.blob.read, rnnedge.blob.show, rnnedge.blob.write, rnnedge.converter
import rnnedge.conversion, rnnedge.fixedpoint, rnnedge.ir, rnnedge.quant.policy, rnnedge.reference
from rnnedge.blob.read import read_blob
warnings.simplefilter("ignore")
for quant in ("f32", "int8"):
    rnnedge.convert(sys.argv[2], f"m_{quant}.rne", quant=quant)
    blob = read_blob(open(f"m_{quant}.rne", "rb").read(), source=quant)
assert "rnnedge._rnnedge" not in sys.modules
try:
    rnnedge.load("m_f32.rne")
except rnnedge.NotBuiltError as e:
    assert isinstance(e, ImportError) and isinstance(e, rnnedge.RnnedgeError)
    print(e)
else:
    raise SystemExit("rnnedge.load ran without the compiled module")
"""


def _env_without_this_checkout() -> dict[str, str]:
    """The environment with no PYTHONPATH entry that holds an rnnedge package (this checkout, or a
    copy of it), keeping the others (where the emulated aarch64 run keeps numpy and onnx)."""
    keep = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and not (Path(p) / "rnnedge").is_dir()]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if keep:
        env["PYTHONPATH"] = os.pathsep.join(keep)
    return env


def test_the_package_imports_and_converts_without_its_build(tmp_path: Path) -> None:
    """A copy of the package without its compiled module (as a checkout is before its build, or
    as the checkout root shadows an installed rnnedge): `import rnnedge` and the pure-Python
    modules work, a model converts to f32 and int8 blobs that read back, and `rnnedge.load`
    (the first use of the C library) raises NotBuiltError naming the fix."""
    shutil.copytree(PKG, tmp_path / "rnnedge",
                    ignore=shutil.ignore_patterns("_rnnedge*", "__pycache__", "*.npz"))  # fmt: skip
    onnx_file = PKG / "examples" / "har_lstm.onnx"
    env = _env_without_this_checkout()
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_BUILD, str(tmp_path / "rnnedge"), str(onnx_file)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    message = run.stdout.strip()
    assert "rnnedge._rnnedge) is not built" in message, message
    assert str(tmp_path / "rnnedge") in message, message
    assert "pip install -e ." in message, message
    # where an installed rnnedge is hidden by the copy (CI installs one), the message names it
    # instead of telling to install; otherwise it says how to install
    hidden = re.search(r"hides the installed package at (\S+)", message)
    assert ("pip install ." in message.replace("pip install -e .", "")) != bool(hidden), message


# -- tests/ and tools/ ----------------------------------------------------------------------------
TESTS, TOOLS = PKG.parent / "tests", PKG.parent / "tools"
# tools/ that still import tests/ helpers, with why (none may be added)
TOOLS_ON_TESTS: dict[str, str] = {}


def _fakes_and_cross_imports(path: Path, helpers: set[str]) -> list[str]:
    """What in one file fakes an rnnedge module in sys.modules, puts tests/ on sys.path, or
    imports a module of tests/ (`helpers`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        text = ast.dump(node)
        if isinstance(node, (ast.Assign, ast.Call)) and "attr='modules'" in text and "'rnnedge" in text:
            if isinstance(node, ast.Assign) or getattr(node.func, "attr", "") in ("setdefault", "__setitem__"):
                found.append(f"line {node.lineno}: an rnnedge module faked in sys.modules")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("insert", "append"):
            if "attr='path'" in ast.dump(node.func) and "value='tests'" in text:
                found.append(f"line {node.lineno}: tests/ put on sys.path")
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        found += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in helpers]
    return found


def test_tools_do_not_import_tests_and_nothing_fakes_the_package() -> None:
    """tools/ do not import tests/ (generators of test data live beside the tests they feed:
    tests/make_c_vectors.py), and no script fakes an `rnnedge` package in sys.modules to avoid
    the compiled module: `import rnnedge` does not need it."""
    helpers = {p.stem for p in TESTS.glob("*.py") if p.name != "conftest.py"}
    bad = []
    for path in sorted(TOOLS.rglob("*.py")):
        for what in _fakes_and_cross_imports(path, helpers):
            if path.relative_to(TOOLS).as_posix() not in TOOLS_ON_TESTS or "sys.modules" in what:
                bad.append(f"tools/{path.relative_to(TOOLS)} {what}")
    for path in sorted(TESTS.rglob("*.py")):
        bad += [f"tests/{path.relative_to(TESTS)} {w}" for w in _fakes_and_cross_imports(path, set())]
    assert not bad, "\n".join(bad)
    for name in TOOLS_ON_TESTS:  # an exception that is no longer needed goes
        assert _fakes_and_cross_imports(TOOLS / name, helpers), f"tools/{name} no longer imports tests/"


AS_SCRIPT = NO_BUILD + r"""
import runpy
script = sys.argv[1]
sys.argv, sys.path[0] = sys.argv[1:], script.rpartition("/")[0]  # as `python SCRIPT ARGS` sets them
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.parametrize("script, args", [("tests/make_c_vectors.py", ["--help"]),
                                          ("tools/make_qtables.py", ["--check"])])  # fmt: skip
def test_the_generators_run_without_a_build(script: str, args: list[str], tmp_path: Path) -> None:
    """The C vectors' generator (its imports: --help exits after them) and the C tables'
    generator run as scripts from anywhere, on this checkout's modules, with the compiled
    module unavailable."""
    env = _env_without_this_checkout()
    run = subprocess.run([sys.executable, "-c", AS_SCRIPT, str(PKG.parent / script), *args],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "rnnedge._rnnedge" not in run.stderr


@pytest.mark.parametrize("error, says", [
    (ModuleNotFoundError("No module named 'rnnedge._rnnedge'", name="rnnedge._rnnedge"), "is not built"),
    (ImportError("_rnnedge.abi3.so: undefined symbol: rne_step"), "cannot be loaded (_rnnedge.abi3.so: undefined"),
])  # fmt: skip
def test_a_missing_or_broken_build_is_a_not_built_error(error, says, monkeypatch) -> None:
    """Both ways the extension can fail to import (absent; present but not loadable) give
    NotBuiltError (an ImportError) naming the fix."""
    import rnnedge
    from rnnedge._clib import clib

    class Broken:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "rnnedge._rnnedge":
                raise error

    monkeypatch.delitem(sys.modules, "rnnedge._rnnedge", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken, *sys.meta_path])
    with pytest.raises(rnnedge.NotBuiltError, match="pip install") as info:
        clib.__wrapped__()  # the uncached call
    assert says in str(info.value) and isinstance(info.value, ImportError)


AS_MODULE = NO_BUILD + r"""
import runpy
sys.argv = ["rnnedge", *sys.argv[1:]]
runpy.run_module("rnnedge", run_name="__main__", alter_sys=True)  # python -m rnnedge ARGS
"""


def test_the_checkout_root_hiding_an_installed_package_names_the_fix(tmp_path: Path) -> None:
    """Issue 14, item 5: after `pip install .`, Python started in the checkout root imports the
    checkout's rnnedge/ (no compiled module) instead of the installed one. `import rnnedge`
    works; running a model through `python -m rnnedge` is one line, exit 1, naming the installed
    package it hides and the fixes (run elsewhere; pip install -e . / build_ext --inplace)."""
    import numpy as np

    import rnnedge

    checkout, site = tmp_path / "checkout", tmp_path / "site"
    shutil.copytree(PKG, checkout / "rnnedge",
                    ignore=shutil.ignore_patterns("_rnnedge*", "__pycache__", "*.npz"))  # fmt: skip
    (site / "rnnedge").mkdir(parents=True)  # what pip install . left in site-packages
    (site / "rnnedge" / "_rnnedge.abi3.so").write_bytes(b"")
    rnnedge.convert(PKG / "examples" / "har_lstm.onnx", tmp_path / "m.rne")
    np.save(tmp_path / "x.npy", np.zeros((1, 5, 6), np.float32))
    env = _env_without_this_checkout()
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    run = subprocess.run(
        [sys.executable, "-c", AS_MODULE, "run", str(tmp_path / "m.rne"), "--input", str(tmp_path / "x.npy")],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run
    err = run.stderr
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("rnnedge run: error: rnnedge's compiled module (rnnedge._rnnedge) is not built"), err
    assert f"hides the installed package at {site / 'rnnedge'}" in err, err
    assert "Run from another directory" in err and "pip install -e ." in err, err
    assert "python setup.py build_ext --inplace" in err, err
