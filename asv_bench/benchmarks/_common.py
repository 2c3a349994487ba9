"""Shared setup helpers; the benchmarks import without asv installed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from numdiffx.studies import make_mlp
from numdiffx.studies._networks import BackendNetwork, backend_available, network_for

SEED = 0


def require(backend: str) -> None:
    """asv skips a parameter combination whose setup raises NotImplementedError."""
    if not backend_available(backend):
        raise NotImplementedError(f"{backend} is not installed")


def tracked(key: str, unit: str) -> Callable[[Any, dict[str, Any]], Any]:
    """An asv ``track_*`` method returning ``cache[key]`` (the setup_cache's result) in
    ``unit``."""
    def track(self: Any, cache: dict[str, Any]) -> Any:
        return cache[key]

    track.unit = unit  # type: ignore[attr-defined]
    return track


def require_module(name: str) -> Any:
    """The imported module, or NotImplementedError (asv: skipped) when it is absent."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        raise NotImplementedError(f"{name} is not installed") from None


def mlp(backend: str, activation: str, dtype: str, rows: int
        ) -> tuple[BackendNetwork, object]:
    """The report's network on ``backend`` (same weights everywhere) and x of shape (rows, 5)."""
    require(backend)
    net = network_for(make_mlp(activation, seed=SEED), backend, dtype)
    x = np.random.default_rng(SEED).standard_normal((rows, 5))
    return net, net.asarray(x)


def ratio_of_min_times(a: Callable[[], Any], b: Callable[[], Any], repeats: int = 5,
                       sync: Callable[[Any], Any] = lambda v: v) -> float:
    """min time of ``a`` / min time of ``b``, measured interleaved in one run (a warm-up
    call of each excluded): the like-for-like ratios the compare scripts print."""
    sync(a())
    sync(b())
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(a())
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sync(b())
        tb.append(time.perf_counter() - t0)
    return min(ta) / min(tb)
