"""Shared by the compare scripts: interleaved timing (min of repeats), peak memory, cells.

Timings on a shared machine are noisy: each candidate of a comparison is timed in the same
run, round robin (so load from other processes hits every candidate alike), after untimed
warm-up calls (jit compilation, allocator growth, caches), and the MINIMUM of the repeats
is reported. Compare the ratios printed within a run, never absolute times across runs.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def best_times(funs: dict[str, Callable[[], Any]], *, repeats: int = 7, warmup: int = 1,
               sync: Callable[[Any], Any] = lambda value: value
               ) -> dict[str, tuple[float, Any]]:
    """Minimum wall time and last result of each zero-argument callable, interleaved."""
    out: dict[str, Any] = {}
    for name, fun in funs.items():
        for _ in range(warmup):
            out[name] = sync(fun())
    times: dict[str, list[float]] = {name: [] for name in funs}
    for _ in range(repeats):
        for name, fun in funs.items():
            t0 = time.perf_counter()
            out[name] = sync(fun())
            times[name].append(time.perf_counter() - t0)
    return {name: (min(times[name]), out[name]) for name in funs}


def peak_bytes(fun: Callable[[], Any]) -> tuple[int, Any]:
    """Peak traced memory (bytes) of one call; numpy's allocations are traced."""
    tracemalloc.start()
    try:
        value = fun()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, value


def ms(seconds: float) -> str:
    """A time in milliseconds, 9 characters wide."""
    return f"{seconds * 1e3:9.3f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
