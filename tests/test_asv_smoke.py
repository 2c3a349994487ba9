"""Every asv benchmark module imports (without asv) and one instance of each class runs."""

from __future__ import annotations

import importlib
import inspect
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


def _cases():
    for mod in _modules():
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == mod.__name__ and hasattr(cls, "params"):
                yield pytest.param(cls, id=f"{mod.__name__}.{name}")


@pytest.mark.parametrize("cls", list(_cases()))
def test_one_instance_of_each_benchmark_runs(cls):
    names = [n for n in dir(cls) if n.startswith(("time_", "track_", "peakmem_"))]
    assert names, f"{cls.__name__} has no benchmarks"
    assert len(cls.param_names) == len(cls.params)
    ran = 0
    # first combination whose setup does not skip, smallest sizes first
    import itertools

    combos = itertools.product(*[sorted(p, key=lambda v: (isinstance(v, str), v))
                                 if all(isinstance(v, (int, float)) for v in p) else p
                                 for p in cls.params])
    for combo in combos:
        bench = cls()
        try:
            bench.setup(*combo)
        except NotImplementedError:
            continue
        for n in names:
            value = getattr(bench, n)(*combo)
            if n.startswith("track_"):
                assert isinstance(value, (int, float))
        ran += 1
        break
    assert ran == 1
