"""The docstring examples of every numdiffx module run (``doctest``), so they cannot drift.

Modules are imported one by one; a module that needs an absent optional library (torch,
jax, cupy, scipy, ...) is skipped, and so is a docstring whose examples import one. Docstring examples
are part of the API reference of the documentation site.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import re

import pytest

import numdiffx

OPTIONAL = ("torch", "jax", "cupy", "scipy", "dask", "distributed", "matplotlib")
_IMPORTS = re.compile(r"^\s*(?:import|from)\s+(" + "|".join(OPTIONAL) + r")\b", re.M)
MODULES = sorted(m.name for m in pkgutil.walk_packages(numdiffx.__path__, "numdiffx."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:  # an adapter for an absent optional library
        if err.name and err.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{module_name} needs {err.name}")
        raise
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in doctest.DocTestFinder().find(module, module_name):
        needs = {m for ex in test.examples for m in _IMPORTS.findall(ex.source)}
        if not test.examples or not all(_available(n) for n in needs):
            continue
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"


def test_public_api_has_examples() -> None:
    """Every public function of ``numdiffx`` shows an example with its accuracy."""
    missing = []
    for name in numdiffx.__all__:
        obj = getattr(numdiffx, name)
        if callable(obj) and not isinstance(obj, type) and ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"public functions without a docstring example: {missing}"
