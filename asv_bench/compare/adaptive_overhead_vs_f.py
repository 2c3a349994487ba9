"""The adaptive dense Jacobian vs its own evaluations of f: bookkeeping against f's time (issue 37).

F is the tridiagonal of ``adaptive_vs_scipy_3point.py`` (F_i = x_(i-1) - 2 x_i + x_(i+1) +
sin x_i, batched), the result the dense Jacobian with ``steps.adaptive()`` and
``full_output=True``. From ONE interleaved run (round robin, min of repeats):

- n = 3000: the call's time; the time of its own evaluations of f, measured two ways: f
  wrapped with a timer inside a second, otherwise identical call ("f in the call"), and f
  alone on batches of exactly the recorded shapes, replayed after the call ("f replayed",
  rows of x with one element moved: the same work as the rule's points). The ratio
  call / f is what the tableau, the blocks and the verify pass cost on top of f; target
  <= 1.5 against both (the bookkeeping at most half of f's time).
- n = 300: the same call against ``scipy.differentiate.jacobian`` (its default
  tolerances, f vectorised over its trailing axes), both max errors against the exact
  Jacobian; target: time <= 0.1x scipy's at no worse error.

Measured (issue 37, 2 shared cores under a load of 8-10, this script run alternately on
the code before and after, min of 2 each; same bits, nfev 36061, 470 MiB peak traced
either way): call / f replayed 2.25-2.98 before, 2.11-2.48 after; call / f in the call
1.71-1.86 before, 1.22-1.43 after. Much of what is left is minor page faults: glibc hands
the large temporaries (f's own included) back to the system and faults them in again, so
f runs up to 1.7x slower inside the call than replayed. With
``MALLOC_MMAP_THRESHOLD_=2000000000 MALLOC_TRIM_THRESHOLD_=4000000000`` (freed memory
kept; faults 55.8k -> 31.5k per call) f takes the same time in the call and replayed,
and call / f is 2.06-2.10 before, 1.52-1.60 after. n = 300 against scipy: 0.08-0.12 on
both sides of the change in those runs (noise; f is a small part there).

Run: python asv_bench/compare/adaptive_overhead_vs_f.py [repeats]
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
from _harness import best_times, peak_bytes, verdict
from adaptive_vs_scipy_3point import exact_jacobian, tridiagonal

import numdiffx as nd


class TimedF:
    """f with a timer: the total time spent in f and the shapes of its batches."""

    def __init__(self, f: Any) -> None:
        self.f, self.seconds, self.shapes = f, 0.0, []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        y = self.f(x)
        self.seconds += time.perf_counter() - t0
        self.shapes.append(x.shape)
        return y


def adaptive_call(f: Any, x: np.ndarray) -> Any:
    return nd.jacobian(f, x, step=nd.steps.adaptive(), evaluation="batched", full_output=True)


def replay(shapes: list[tuple[int, ...]], x: np.ndarray) -> float:
    """f alone on batches of the recorded shapes (each built untimed: rows of x, one
    element of each row moved by 1e-3, as the rule's points are)."""
    total = 0.0
    for shape in shapes:
        batch = np.broadcast_to(x, shape).copy()
        if len(shape) == 2:
            rows = np.arange(shape[0])
            batch[rows, rows % shape[1]] += 1e-3
        t0 = time.perf_counter()
        tridiagonal(batch)
        total += time.perf_counter() - t0
        del batch
    return total


def overhead(n: int, repeats: int) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, n)
    timed = TimedF(tridiagonal)

    def wrapped() -> float:
        timed.seconds, timed.shapes = 0.0, []
        adaptive_call(timed, x)
        return timed.seconds

    adaptive_call(tridiagonal, x)  # warm-up (allocator, caches)
    in_call, replayed, calls = [], [], []
    for _ in range(repeats):  # round robin: call, call with the timer, replay
        t0 = time.perf_counter()
        r = adaptive_call(tridiagonal, x)
        calls.append(time.perf_counter() - t0)
        in_call.append(wrapped())
        replayed.append(replay(timed.shapes, x))
    t_call, t_in, t_re = min(calls), min(in_call), min(replayed)
    err = float(np.max(np.abs(r.value - exact_jacobian(x))))
    rows = sum(s[0] for s in timed.shapes)
    print(f"adaptive dense Jacobian of the tridiagonal F, n = {n}, float64, min of {repeats} "
          "interleaved runs")
    print(f"   call {t_call:6.3f} s; f in the call {t_in:6.3f} s, f replayed {t_re:6.3f} s "
          f"({len(timed.shapes)} batches, {rows} rows, nfev {r.nfev}); max error {err:.1e}")
    print(f"   call / f in the call {t_call / t_in:5.2f}, call / f replayed {t_call / t_re:5.2f}"
          f"  (target <= 1.5: {verdict(max(t_call / t_in, t_call / t_re) <= 1.5)})")
    peak, _ = peak_bytes(lambda: adaptive_call(tridiagonal, x))
    print(f"   peak traced memory {peak / 2**20:.0f} MiB")


def versus_scipy(n: int, repeats: int) -> None:
    try:
        from scipy.differentiate import jacobian as sp_jacobian
    except ImportError:
        print("scipy >= 1.15 not installed: pip install scipy")
        return
    x = np.random.default_rng(0).uniform(-1, 1, n)
    exact = exact_jacobian(x)

    def f_scipy(z: np.ndarray) -> np.ndarray:  # scipy: (n, ...) -> (n, ...)
        return np.moveaxis(tridiagonal(np.moveaxis(z, 0, -1)), -1, 0)

    res = best_times({"numdiffx": lambda: adaptive_call(tridiagonal, x).value,
                      "scipy": lambda: sp_jacobian(f_scipy, x).df}, repeats=repeats)
    (t_nd, v_nd), (t_sp, v_sp) = res["numdiffx"], res["scipy"]
    e_nd = float(np.max(np.abs(v_nd - exact)))
    e_sp = float(np.max(np.abs(v_sp - exact)))
    print(f"n = {n}: adaptive {t_nd * 1e3:8.1f} ms, max error {e_nd:.1e}; "
          f"scipy.differentiate.jacobian {t_sp * 1e3:8.1f} ms, max error {e_sp:.1e}")
    print(f"   ratio {t_nd / t_sp:5.3f} (target <= 0.1 at no worse error: "
          f"{verdict(t_nd <= 0.1 * t_sp and e_nd <= e_sp)})")


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    overhead(3000, repeats)
    versus_scipy(300, max(repeats, 3))


if __name__ == "__main__":
    main()
