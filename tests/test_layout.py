"""The package layout holds (issue #15): small modules, no import cycles, thin spark-submit
entries, Spark only in spark/ and the CLI, and one binding point per compiled kernel.

The import graph is static: every ``import`` / ``from ... import`` of every module under
metaclip_spark/, including those inside functions (a lazy import still ties two modules
together), read with ast; no module is imported to build it."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from metaclip_spark.kernels import native

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "metaclip_spark"
MAX_LINES = 400
# modules allowed over MAX_LINES, each with the reason it is one piece (none today)
LONG_MODULES: dict[str, str] = {}
SPARK_FREE = ("steps", "formats", "inputs", "metadata", "run", "kernels")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def imported_names(path: Path) -> set[str]:
    """Every module name ``path`` imports (absolute; relative ones resolved), anywhere in it.
    ``from a import b`` names ``a.b`` when that is a module, else ``a``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = base + "." + alias.name
                out.add(full if full in MODULES else base)
    return out


def graph() -> dict[str, set[str]]:
    """module -> the modules of metaclip_spark it imports, with the packages on the way
    (importing a.b.c runs a/__init__.py and a/b/__init__.py first)."""
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for imp in imported_names(path):
            parts = imp.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in MODULES and target != name and not name.startswith(target + "."):
                    targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def test_no_module_over_400_lines():
    files = [p for p in sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "jobs").glob("*.py"))
             if "__pycache__" not in p.parts]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert {k: v for k, v in long.items() if k not in LONG_MODULES} == {}
    assert set(LONG_MODULES) <= set(long), "an exception that is no longer needed"


def test_graph_reader_sees_lazy_and_relative_imports(tmp_path):
    assert "metaclip_spark.inputs.streams" in graph()["metaclip_spark.inputs.io"]
    assert "metaclip_spark.kernels.native" in graph()["metaclip_spark.formats.wat"]
    lazy = ast.parse("def f():\n    from metaclip_spark.spark import session\n")
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(lazy))          # ast.walk enters functions
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_cycles():
    assert cycles(graph()) == []


def test_spark_only_in_spark_and_cli():
    offenders = {name: sorted(i for i in imported_names(path) if i.split(".")[0] == "pyspark")
                 for name, path in MODULES.items()
                 if name.split(".")[1:2] and name.split(".")[1] in SPARK_FREE}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_nothing_imports_jobs():
    paths = list(MODULES.values()) + sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "jobs").glob("*.py"))
    assert [str(p.relative_to(ROOT)) for p in paths if "__pycache__" not in p.parts
            and any(i == "jobs" or i.startswith("jobs.") or i == "metaclip_spark.jobs"
                    for i in imported_names_anywhere(p))] == []


def imported_names_anywhere(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out.add(node.module or "")
    return out


@pytest.mark.parametrize("job", sorted((ROOT / "jobs").glob("*.py")), ids=lambda p: p.name)
def test_jobs_are_thin(job):
    assert len(job.read_text().splitlines()) < 20
    allowed = ("sys", "__future__", "metaclip_spark.cli")
    assert {i for i in imported_names_anywhere(job)
            if i not in allowed and not i.startswith("metaclip_spark.spark.")} == set()


def test_setup_installs_what_is_on_disk():
    setup = (ROOT / "setup.py").read_text()
    assert "package_dir" not in setup
    assert not (PACKAGE / "jobs").exists()


# ------------------------------------------------------------------ compiled kernels
def resolve(ref: str):
    module, _, qualname = ref.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", sorted(native.KERNELS))
def test_kernel_table(name):
    """Each compiled kernel: its C source defines it, its Python reference and its caller
    exist, and its equality test exists and names it."""
    k = native.KERNELS[name]
    csrc = PACKAGE / "kernels" / "csrc"
    assert '"%s"' % name in (csrc / "module.c").read_text() + (csrc / k.source).read_text()
    assert (csrc / k.source).is_file()
    assert callable(resolve(k.reference)) and callable(resolve(k.caller))
    test = ROOT / k.test
    assert test.is_file() and name in test.read_text()
    caller_module = k.caller.partition(":")[0]
    assert 'get("%s")' % name in MODULES[caller_module].read_text()      # bound there, with native.get


def test_every_compiled_symbol_is_in_the_table():
    exported = set()
    module_c = (PACKAGE / "kernels" / "csrc" / "module.c").read_text()
    exported.update(re.findall(r'\{"(\w+)",', module_c))                       # the functions
    exported.update(re.findall(r'PyModule_AddObject\w*\(m, "(\w+)"', module_c))   # the types
    assert exported == set(native.KERNELS)


def test_kernels_are_bound_only_through_native_get():
    """No module but kernels/native.py touches the extension itself."""
    users = [name for name, path in MODULES.items() if name != "metaclip_spark.kernels.native"
             and ("_speedups" in imported_names(path) or "speedups" in path.read_text().replace("_speedups", ""))]
    assert users == []


def test_get(monkeypatch):
    with pytest.raises(KeyError):
        native.get("no_such_kernel")
    monkeypatch.setattr(native, "speedups", type("OlderBuild", (), {"wat_scan": staticmethod(len)}))
    assert native.get("wat_scan") is len and native.get("nesting_work") is None   # a stale .so
    monkeypatch.setattr(native, "speedups", None)
    assert all(native.get(name) is None for name in native.KERNELS)
