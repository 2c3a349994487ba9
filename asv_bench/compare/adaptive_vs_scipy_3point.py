"""Adaptive dense Jacobian vs scipy's ``approx_derivative`` 3-point, on the same F.

F is tridiagonal, F_i = x_(i-1) - 2 x_i + x_(i+1) + sin x_i, n = 3000, f batched; the
result is the dense 3000 x 3000 Jacobian on both sides, no sparsity. Compared: the cost of
``nd.jacobian(F, x, step=nd.steps.adaptive(), evaluation="batched")`` (error estimate per
entry, target max error <= 1e-12) against scipy's fixed-step central difference (one
evaluation per column pair, error ~1e-10) -- NOT the same accuracy: the ratio is the price
of about two more digits, and the errors are printed next to the times. numdiffx's plain
central difference (default step) is there for the like-for-like time.

Targets (issue 17): adaptive max error <= 1e-12 in <= 4x scipy's time, peak memory <= 1 GB.
Measured (2 shared cores, same session): before the tableau ran in blocks of columns, 10.6 s
(26.9x scipy's 0.40 s), 2550 MiB peak traced memory; then 4.3-4.8 s (14-15.5x), 518 MiB;
now 3.1 s (9.7x scipy's 0.32 s; the previous code 4.32 s, 14.2x, in the same session),
471 MiB, max error 6.6e-14 (bit for bit the same Jacobian throughout). Most of the time
is f itself: the diagonal needs 5 levels (its Ridders estimate at h = 1/64 is 2e-11,
above the stopping tolerance eps**0.75) and the verify pass one more, each 2n rows of f
(36061 rows in all, ~1.5 s here), while scipy's whole call costs about one such pass: f
alone is ~5x scipy, so <= 4x needs fewer passes (a smaller first step or a looser
stopping rule), not less overhead. The rest (~1.5 s then) was the tableau's first two
levels over all 9M elements (everything but the diagonal finishes at the second) and the
joining of the blocks; issue 37 roughly halved it (same bits): the call against its own
evaluations of f is ``adaptive_overhead_vs_f.py``.
With a known pattern the same Jacobian costs a few colours: see ``sparse_vs_scipy.py``.
Run: python asv_bench/compare/adaptive_vs_scipy_3point.py
"""

from __future__ import annotations

import numpy as np
from _harness import best_times, peak_bytes, verdict

import numdiffx as nd

N = 3000


def tridiagonal(x: np.ndarray) -> np.ndarray:
    """Batched: x (..., n) -> (..., n)."""
    y = -2.0 * x + np.sin(x)
    y[..., 1:] += x[..., :-1]
    y[..., :-1] += x[..., 1:]
    return y


def exact_jacobian(x: np.ndarray) -> np.ndarray:
    n = x.size
    return np.diag(-2.0 + np.cos(x)) + np.eye(n, k=1) + np.eye(n, k=-1)


def main() -> None:
    try:
        from scipy.optimize._numdiff import approx_derivative
    except ImportError:
        print("scipy not installed: pip install scipy")
        return
    x = np.random.default_rng(0).uniform(-1, 1, N)
    exact = exact_jacobian(x)
    funs = {
        "scipy approx_derivative 3-point": lambda: approx_derivative(tridiagonal, x,
                                                                     method="3-point"),
        "numdiffx central, default step": lambda: nd.jacobian(tridiagonal, x,
                                                              evaluation="batched"),
        "numdiffx steps.adaptive()": lambda: nd.jacobian(tridiagonal, x,
                                                         step=nd.steps.adaptive(),
                                                         evaluation="batched",
                                                         full_output=True),
    }
    res = best_times(funs, repeats=2, warmup=0)
    t_scipy = res["scipy approx_derivative 3-point"][0]
    print(f"dense Jacobian of the tridiagonal F, n = {N}, float64 (min of 2 interleaved runs)")
    for name, (t, value) in res.items():
        jac = value.value if isinstance(value, nd.DiffResult) else value
        err = float(np.max(np.abs(jac - exact)))
        print(f"   {name:32s} {t:7.2f} s  ({t / t_scipy:5.2f}x scipy)  max error {err:8.1e}")
    t_ad, r = res["numdiffx steps.adaptive()"]
    err = float(np.max(np.abs(r.value - exact)))
    peak, _ = peak_bytes(funs["numdiffx steps.adaptive()"])
    print(f"   adaptive: nfev {r.nfev}, peak traced memory {peak / 2**20:.0f} MiB; targets: "
          f"error <= 1e-12 {verdict(err <= 1e-12)}, time <= 4x scipy "
          f"{verdict(t_ad <= 4 * t_scipy)}, memory <= 1 GB {verdict(peak <= 2**30)}")
    band = np.abs(np.subtract.outer(np.arange(N), np.arange(N))) <= 1
    for label, sparsity in (("pattern given", band), ("sparsity='detect'", "detect")):
        t, r = best_times({"a": lambda s=sparsity: nd.jacobian(
            tridiagonal, x, step=nd.steps.adaptive(), evaluation="batched", full_output=True,
            sparsity=s, sparse_output=False)}, repeats=1, warmup=0)["a"]
        print(f"   steps.adaptive(), {label:18s}: {t:6.3f} s, max error "
              f"{float(np.max(np.abs(r.value - exact))):.1e}, nfev {r.nfev} (not like for like "
              "with the dense rows above: it uses the structure)")


if __name__ == "__main__":
    main()
