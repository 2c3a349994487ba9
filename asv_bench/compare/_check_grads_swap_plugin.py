"""pytest plugin: swap ``jax.test_util.check_grads`` for ``nd.check_grads`` (or keep jax's),
time every call, and record each test's outcome.

Loaded by ``jax_suite_check_grads_vs_nd.py`` with ``-p _check_grads_swap_plugin``; the
environment says which checker (``ND_SWAP_MODE=jax|nd|both``) and where to write the record
(``ND_SWAP_RECORD``, JSON). The swap happens in ``pytest_configure``, before JAX's test
modules import: ``jax.test_util.check_grads``, ``jax._src.test_util.check_grads`` (the
``jtu.check_grads`` JAX's tests call) and ``jax._src.public_test_util.check_grads`` all point
at the timed checker. Nothing else changes: the same tests, seeds and test configuration.

``both``: every call runs BOTH checkers on the same arguments, one after the other, the
order alternating from call to call, each started on cleared jax caches
(``jax.clear_caches()``: most of a cold check is XLA compiling the function's pieces, and
the second checker would otherwise find them compiled; ``ND_SWAP_CLEAR=0`` keeps the caches:
then whichever checker runs first pays for compiling f, and the alternation shares that
out, while each checker's own small operations stay compiled from test to test, as in a
plain run). Each side gets its own time and
verdict: the jax side's record is ``ND_SWAP_RECORD``, numdiffx's ``ND_SWAP_RECORD + ".nd"``
(a test fails for numdiffx where its checker raised, else it has the test's outcome). The
test goes on with jax's result, so a test fails in the run only where jax's check fails.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

# the record, the timed wrapper and the per-test hooks are the torch swap plugin's (same
# directory, on PYTHONPATH): importing the hooks here registers them for this plugin too
from _gradcheck_swap_plugin import (  # noqa: F401 - pytest hooks, found by name
    _CURRENT,
    _entry,
    _timed,
    pytest_runtest_logreport,
    pytest_runtest_logstart,
    pytest_unconfigure,
)

_ND_RECORD: dict[str, dict[str, Any]] = {}
_CLEAR = os.environ.get("ND_SWAP_CLEAR", "1") == "1"
_CALLS = [0]


def _run(impl: Callable[..., Any], args: Any, kwargs: Any, entry: dict[str, Any]
         ) -> BaseException | None:
    if _CLEAR:
        import jax

        jax.clear_caches()
    entry["calls"] += 1
    start = time.perf_counter()
    try:
        impl(*args, **kwargs)
        return None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        entry["checker_error"] = entry["checker_error"] or f"{type(exc).__name__}: {first}"[:600]
        return exc
    finally:
        entry["seconds"] += time.perf_counter() - start


def _both(jax_impl: Callable[..., Any], nd_impl: Callable[..., Any]) -> Callable[..., Any]:
    def checker(*args: Any, **kwargs: Any) -> None:
        node = _CURRENT[0]
        jax_entry = _entry(node)
        nd_entry = _ND_RECORD.setdefault(node, {"calls": 0, "seconds": 0.0,
                                                "checker_error": "", "order": []})
        sides = [(jax_impl, jax_entry), (nd_impl, nd_entry)]
        if _CALLS[0] % 2:
            sides.reverse()
        nd_entry["order"].append("jax" if _CALLS[0] % 2 == 0 else "nd")
        _CALLS[0] += 1
        errors = {id(entry): _run(impl, args, kwargs, entry) for impl, entry in sides}
        jax_error = errors[id(jax_entry)]
        if jax_error is not None:
            raise jax_error

    checker.__wrapped__ = jax_impl  # type: ignore[attr-defined]
    return checker


def pytest_configure(config: Any) -> None:
    import jax.test_util
    from jax._src import public_test_util
    from jax._src import test_util as jtu

    mode = os.environ.get("ND_SWAP_MODE", "jax")
    if mode in ("nd", "both"):
        import numdiffx as nd
    if mode == "both":
        timed = _both(public_test_util.check_grads, nd.check_grads)
    else:
        timed = _timed(nd.check_grads if mode == "nd" else public_test_util.check_grads)
    for module in (jax.test_util, jtu, public_test_util):
        module.check_grads = timed  # type: ignore[attr-defined]


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("ND_SWAP_RECORD")
    if path and os.environ.get("ND_SWAP_MODE") == "both":
        with open(path + ".nd", "w") as fh:
            json.dump(_ND_RECORD, fh, indent=1)


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
