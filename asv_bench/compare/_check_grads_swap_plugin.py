"""pytest plugin: swap ``jax.test_util.check_grads`` for ``nd.check_grads`` (or keep jax's),
time every call, and record each test's outcome.

Loaded by ``jax_suite_check_grads_vs_nd.py`` with ``-p _check_grads_swap_plugin``; the
environment says which checker (``ND_SWAP_MODE=jax|nd``) and where to write the record
(``ND_SWAP_RECORD``, JSON). The swap happens in ``pytest_configure``, before JAX's test
modules import: ``jax.test_util.check_grads``, ``jax._src.test_util.check_grads`` (the
``jtu.check_grads`` the tests call) and ``jax._src.public_test_util.check_grads`` all point
at the timed checker. Nothing else changes: the same tests, seeds and test configuration.
"""

from __future__ import annotations

import os
from typing import Any

# the record, the timed wrapper and the per-test hooks are the torch swap plugin's (same
# directory, on PYTHONPATH): importing the hooks here registers them for this plugin too
from _gradcheck_swap_plugin import (  # noqa: F401 - pytest hooks, found by name
    _timed,
    pytest_runtest_logreport,
    pytest_runtest_logstart,
    pytest_unconfigure,
)


def pytest_configure(config: Any) -> None:
    import jax.test_util
    from jax._src import public_test_util
    from jax._src import test_util as jtu

    if os.environ.get("ND_SWAP_MODE", "jax") == "nd":
        import numdiffx as nd

        impl = nd.check_grads
    else:
        impl = public_test_util.check_grads
    timed = _timed(impl)
    for module in (jax.test_util, jtu, public_test_util):
        module.check_grads = timed  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """``ND_SWAP_ONLY``: a file of test ids, one a line; run only those."""
    path = os.environ.get("ND_SWAP_ONLY")
    if not path:
        return
    with open(path) as fh:
        keep = {line.strip() for line in fh if line.strip()}
    chosen = [item for item in items if item.nodeid in keep]
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in keep])
    items[:] = chosen
