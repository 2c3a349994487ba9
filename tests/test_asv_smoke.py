"""Every asv benchmark module imports (without asv) and one instance of each class runs;
every compare script imports.

asv is not needed: the test calls ``setup_cache``/``setup``/each ``time_*``, ``peakmem_*``
and ``track_*``/``teardown`` as asv would, for the first parameter combination whose setup
does not skip (smallest sizes first). A class may name ``smoke_overrides`` (attributes set
before the run, e.g. a smaller n) so that a slow benchmark still runs its code path here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "asv_bench"


def _modules():
    sys.path.insert(0, str(ROOT))
    try:
        import benchmarks
    finally:
        sys.path.remove(str(ROOT))
    return [importlib.import_module(f"benchmarks.{m.name}")
            for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_")]


# peers and optional backends a compare script may import at the top; the core CI job
# has none of them, and the script must still import once they are installed
OPTIONAL = ("torch", "jax", "jaxlib", "cupy", "scipy", "numdifftools", "dask", "distributed",
            "matplotlib", "statsmodels")
BENCH_PREFIXES = ("time_", "track_", "peakmem_")


def _cases():
    for mod in _modules():
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if (cls.__module__ == mod.__name__ and not name.startswith("_")
                    and any(n.startswith(BENCH_PREFIXES) for n in dir(cls))):
                yield pytest.param(cls, id=f"{mod.__name__}.{name}")


def _combos(cls):
    params = getattr(cls, "params", None)
    if params is None:
        return [()]
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]  # asv: one parameter may be given as a flat list
    assert len(cls.param_names) == len(params)
    return itertools.product(*[sorted(p, key=lambda v: (isinstance(v, str), v))
                               if all(isinstance(v, (int, float)) for v in p) else p
                               for p in params])


@pytest.mark.parametrize("cls", list(_cases()))
def test_one_instance_of_each_benchmark_runs(cls, monkeypatch):
    names = [n for n in dir(cls) if n.startswith(BENCH_PREFIXES)]
    for attr, value in getattr(cls, "smoke_overrides", {}).items():
        monkeypatch.setattr(cls, attr, value)
    cache = cls().setup_cache() if hasattr(cls, "setup_cache") else None
    lead = (cache,) if hasattr(cls, "setup_cache") else ()
    for combo in _combos(cls):
        bench = cls()
        try:
            if hasattr(bench, "setup"):
                bench.setup(*lead, *combo)
        except NotImplementedError:
            continue
        try:
            for n in names:
                value = getattr(bench, n)(*lead, *combo)
                if n.startswith("track_"):
                    assert isinstance(value, (int, float)), (n, value)
        finally:
            if hasattr(bench, "teardown"):
                bench.teardown(*lead, *combo)
        return
    pytest.skip(f"every parameter combination of {cls.__name__} skips here")


def test_every_compare_script_imports_and_says_what_it_compares():
    folder = ROOT / "compare"
    scripts = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    assert len(scripts) >= 8
    sys.path.insert(0, str(folder))
    try:
        for script in scripts:
            doc = ast.get_docstring(ast.parse(script.read_text())) or ""
            try:
                importlib.import_module(script.stem)
            except ModuleNotFoundError as err:  # a peer library this machine lacks
                if (err.name or "").split(".")[0] not in OPTIONAL:
                    raise
            assert "Run: " in doc and f"compare/{script.name}" in doc, script.name
            assert " vs " in doc.splitlines()[0], script.name  # the title names both sides
    finally:
        sys.path.remove(str(folder))
