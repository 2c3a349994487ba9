"""Sparse Hessians (issue 34): star colouring and pattern-restricted stencils vs the dense
Hessian and vs the column colouring of the gradient's Jacobian, counting points and time.

Three problems with known Hessians: a chained Rosenbrock (tridiagonal), an arrowhead
(``x_0`` couples to every variable) and a 2-D five-point grid energy. For each n:

- from g (the analytic gradient, central differences):
  ``nd.hessian(grad=g, sparsity=P)`` (star colouring: 2 c + 1 gradient points, c = 3, 2, 5)
  vs ``nd.jacobian(g, sparsity=P)`` (the column colouring of g's Jacobian, Curtis-Powell-Reid:
  the arrowhead needs n colours there) vs the dense ``nd.hessian(grad=g)`` (2 n + 1);
- from f alone (batched f): ``nd.hessian(f, sparsity=P)`` (diagonal + one mixed stencil
  per pair: 4 n + 2 (nnz - n) + 1 points) and with ``sparsity="detect"`` (detection
  included) vs the dense ``nd.hessian(f)`` (2 n**2 + 2 n + 1; timed at n = 1000 only).

Errors: max |H - exact| over the largest |exact|. Times: min of interleaved repeats.
Targets: within 1e-5 (f) / 1e-6 (g); 2 (c + 1) + 1 gradient points; at most 4 nnz + 1
values of f; detection + evaluation under a tenth of the dense count; under 10 s at
n ~ 2000. Run: python asv_bench/compare/sparse_hessian_vs_dense.py [max_n [min_n]]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _harness import best_times, verdict

import numdiffx as nd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._hessian_problems import problems  # noqa: E402


def err(value, exact):
    """max |value - exact| / max |exact| (sparse stays sparse: n = 1e5 never densifies)."""
    diff = value - exact
    top = abs(diff).max() if sp.issparse(diff) else np.max(np.abs(diff))
    return float(top / abs(exact).max())


def _ways(f, g, x, pattern, m):
    ways = {
        "star colouring (g)": lambda: nd.hessian(
            None, x, grad=g, sparsity=pattern, method="central", evaluation="batched",
            full_output=True),
    }
    if m <= 2000 or pattern.n_colours <= 50:  # the arrowhead's n colours: counted only
        ways["column colouring (g)"] = lambda: nd.jacobian(
            g, x, sparsity=pattern, method="central", evaluation="batched", full_output=True)
    if m <= 2000:
        ways["dense (g)"] = lambda: nd.hessian(None, x, grad=g, method="central",
                                               evaluation="batched", full_output=True)
    if m <= 10000:
        ways["pattern (f)"] = lambda: nd.hessian(f, x, sparsity=pattern, evaluation="batched",
                                                 full_output=True)
        ways["detect + pattern (f)"] = lambda: nd.hessian(
            f, x, sparsity="detect", evaluation="batched", full_output=True)
    return ways


def main(max_n: int = 100000, min_n: int = 1000) -> None:
    print(f"{'problem':>10} {'n':>6} {'way':>24} {'points':>10} {'time s':>8} {'error':>9}")
    for n in (1000, 2000, 10000, 100000):
        if n > max_n:
            break
        if n < min_n:
            continue
        for name, m, f, g, hess in problems(n):
            x = np.random.default_rng(1).uniform(0.0, 2.0, m)
            exact = hess(x)
            pattern = nd.SparsityPattern(*exact.nonzero(), (m, m))
            ways = _ways(f, g, x, pattern, m)
            repeats = 3 if m <= 2000 else 1
            results = best_times(ways, repeats=repeats, warmup=0)
            if m <= 1000:  # 2 n**2 + 2 n + 1 points: once
                t0 = time.perf_counter()
                dense = nd.hessian(f, x, evaluation="batched", full_output=True)
                results["dense (f)"] = (time.perf_counter() - t0, dense)
            for way, (t, r) in results.items():
                value = r.value if sp.issparse(r.value) else np.reshape(r.value, (m, m))
                if way == "column colouring (g)":
                    value = (value + value.T) / 2
                e = err(value, exact)
                print(f"{name:>10} {m:>6} {way:>24} {r.nfev:>10} {t:>8.3f} {e:>9.1e}")
            dense_f = 2 * m * m + 2 * m + 1
            if "detect + pattern (f)" in results:
                d = results["detect + pattern (f)"][1]
                ok = d.nfev < dense_f / 10 and np.array_equal(
                    d.pattern.to_dense(), pattern.to_dense())
                print(f"{'':>10} {'':>6} detection exact, under a tenth of the dense "
                      f"{dense_f}: {verdict(ok)}")
            star = nd.hessian(None, x, grad=g, sparsity=pattern, full_output=True,
                              method="central")
            print(f"{'':>10} {'':>6} colours: star {int(star.nfev - 1) // 2}, column "
                  f"{pattern.n_colours} (central points {2 * pattern.n_colours + 1})")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))  # [max_n [min_n]]: n = 1000..100000
