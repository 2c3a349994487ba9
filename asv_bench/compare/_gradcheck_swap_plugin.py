"""pytest plugin: swap ``torch.autograd.gradcheck``/``gradgradcheck`` for numdiffx's (or keep
torch's), time every call, and record each test's outcome.

Loaded by ``gradcheck_suite_torch_vs_nd.py`` with ``-p _gradcheck_swap_plugin``; the
environment says which checker (``ND_SWAP_MODE=torch|nd``) and where to write the record
(``ND_SWAP_RECORD``, JSON). The swap happens in ``pytest_configure``, before the suite's
modules run ``from torch.autograd import gradcheck`` -- the one-line change a downstream
library would make.
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
    def checker(*args: Any, **kwargs: Any) -> Any:
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

    checker.__wrapped__ = impl  # type: ignore[attr-defined]
    return checker


def pytest_configure(config: Any) -> None:
    import torch.autograd

    mode = os.environ.get("ND_SWAP_MODE", "torch")
    if mode == "nd":
        import numdiffx as nd

        gc, ggc = nd.gradcheck, nd.gradgradcheck
    else:
        gc, ggc = torch.autograd.gradcheck, torch.autograd.gradgradcheck
    torch.autograd.gradcheck = _timed(gc)
    torch.autograd.gradgradcheck = _timed(ggc)


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
