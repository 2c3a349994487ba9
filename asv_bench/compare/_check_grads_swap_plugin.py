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

import json
import os
import time
from collections.abc import Callable
from typing import Any

_RECORD: dict[str, dict[str, Any]] = {}
_CURRENT: list[str] = [""]


def _entry(nodeid: str) -> dict[str, Any]:
    return _RECORD.setdefault(nodeid, {"calls": 0, "seconds": 0.0, "outcome": "",
                                       "error": "", "checker_error": ""})


def _timed(impl: Callable[..., Any]) -> Callable[..., Any]:
    def check_grads(*args: Any, **kwargs: Any) -> Any:
        entry = _entry(_CURRENT[0])
        entry["calls"] += 1
        start = time.perf_counter()
        try:
            return impl(*args, **kwargs)
        except BaseException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            entry["checker_error"] = f"{type(exc).__name__}: {first}"[:600]
            raise
        finally:
            entry["seconds"] += time.perf_counter() - start

    check_grads.__wrapped__ = impl  # type: ignore[attr-defined]
    return check_grads


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


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _CURRENT[0] = nodeid


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        entry = _entry(report.nodeid)
        entry["outcome"] = report.outcome
        if report.outcome == "failed":
            text = str(report.longrepr).strip().splitlines()
            entry["error"] = next((line for line in text if line.startswith("E ")),
                                  text[-1] if text else "")[:600]


def pytest_unconfigure(config: Any) -> None:
    path = os.environ.get("ND_SWAP_RECORD")
    if path:
        with open(path, "w") as fh:
            json.dump(_RECORD, fh, indent=1)
