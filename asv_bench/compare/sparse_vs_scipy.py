"""Sparse Jacobians: numdiffx vs scipy's ``approx_derivative(sparsity=...)``, like for like.

1. Tridiagonal F_i = x_i^2 - x_(i-1) x_(i+1) + sin x_i, n = 3000, both central ('3-point'),
   errors against the analytic Jacobian. Two fair pairings, because both libraries can
   reuse their column grouping (colouring) across calls:
   a. colouring precomputed on BOTH sides: numdiffx with a ``SparsityPattern`` whose
      colours are cached (computed in the warm-up) vs scipy with
      ``sparsity=(structure, groups)``, ``groups = group_columns(structure)`` computed once;
   b. first call, colouring included on BOTH sides: a fresh ``SparsityPattern`` per call vs
      scipy with ``sparsity=structure`` (scipy groups the columns on every such call).
   Then ``nd.detect_sparsity`` (probing f, one-time) and a call with the detected pattern.
2. n = 1e6 with a given banded pattern: time and peak traced memory (numdiffx only).
3. The report's tanh network at x (100, 5) on torch: numdiffx with the per-sample pattern
   (11 evaluations) vs numdiffx dense central (1001) and ``torch.func.jacrev``, with errors.
   The report: "JacrevFinite: Finite Difference approach to replacing PyTorch Autograd",
   B. Hendrata, 2024.

Target (issue 7/17): numdiffx <= scipy in 1a and 1b, at equal or better accuracy.
Run: python asv_bench/compare/sparse_vs_scipy.py
"""

from __future__ import annotations

import time

import numpy as np
from _harness import best_times, ms, peak_bytes, verdict

import numdiffx as nd


def tridiag(x: np.ndarray) -> np.ndarray:
    left = np.concatenate([np.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)
    right = np.concatenate([x[..., 1:], np.zeros_like(x[..., :1])], axis=-1)
    return x**2 - left * right + np.sin(x)


def tridiag_exact(x: np.ndarray) -> np.ndarray:
    n = x.size
    jac = np.diag(2 * x + np.cos(x))
    i = np.arange(1, n - 1)
    jac[i, i - 1] = -x[i + 1]  # dF_i/dx_(i-1), i = 1..n-2 (F_(n-1) has no right term)
    jac[i, i + 1] = -x[i - 1]  # dF_i/dx_(i+1), i = 1..n-2 (F_0 has no left term)
    return jac


def band_rows_cols(n: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(n)
    return np.concatenate([i, i[1:], i[:-1]]), np.concatenate([i, i[:-1], i[1:]])


def tridiagonal_3000() -> None:
    import scipy.sparse as sp
    from scipy.optimize._numdiff import approx_derivative, group_columns

    n = 3000
    x = np.linspace(0.1, 2.0, n)
    exact = tridiag_exact(x)
    rows, cols = band_rows_cols(n)
    cached = nd.SparsityPattern(rows, cols, (n, n))
    structure = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, n))
    groups = group_columns(structure)

    funs = {
        "numdiffx, colours cached": lambda: nd.jacobian(tridiag, x, sparsity=cached,
                                                        evaluation="batched"),
        "scipy, groups precomputed": lambda: approx_derivative(
            tridiag, x, method="3-point", sparsity=(structure, groups)),
        "numdiffx, colouring included": lambda: nd.jacobian(
            tridiag, x, sparsity=nd.SparsityPattern(rows, cols, (n, n)), evaluation="batched"),
        "scipy, grouping included": lambda: approx_derivative(tridiag, x, method="3-point",
                                                              sparsity=structure),
    }
    res = best_times(funs, repeats=9)
    print(f"1. tridiagonal n={n}, central / scipy '3-point', min of 9 interleaved runs after a "
          f"warm-up ({cached.n_colours} colours, scipy {int(groups.max()) + 1} groups)")
    for name, (t, jac) in res.items():
        err = float(np.max(np.abs(jac.toarray() - exact)))
        print(f"   {name:30s} {ms(t)} ms   max error {err:.1e}")
    for a, b, what in (("numdiffx, colours cached", "scipy, groups precomputed",
                        "1a: colouring precomputed on both sides"),
                       ("numdiffx, colouring included", "scipy, grouping included",
                        "1b: first call, colouring included on both sides")):
        ratio = res[a][0] / res[b][0]
        print(f"   {what}: numdiffx / scipy = {ratio:.2f} (target <= 1: {verdict(ratio <= 1)})")
    t0 = time.perf_counter()
    detected = nd.detect_sparsity(tridiag, x, evaluation="batched")
    _ = detected.colours
    t_detect = time.perf_counter() - t0
    t_det = best_times({"d": lambda: nd.jacobian(tridiag, x, sparsity=detected,
                                                 evaluation="batched")})["d"][0]
    print(f"   detected pattern: one-time detection + colouring {t_detect:.2f} s ({detected.nnz} "
          f"nonzeros, {detected.n_colours} colours), then {ms(t_det)} ms per Jacobian "
          f"({t_det / res['scipy, groups precomputed'][0]:.2f}x scipy with groups precomputed)")


def banded_million() -> None:
    n = 1_000_000
    x = np.linspace(0.1, 2.0, n)

    def run() -> tuple[float, float, object]:
        t0 = time.perf_counter()
        pattern = nd.SparsityPattern(*band_rows_cols(n), (n, n))
        _ = pattern.colours
        t1 = time.perf_counter()
        jac = nd.jacobian(tridiag, x, sparsity=pattern, evaluation="batched")
        return t1 - t0, time.perf_counter() - t1, jac

    peak, (t_colour, t_jac, jac) = peak_bytes(run)
    err = np.max(np.abs(jac.diagonal() - (2 * x + np.cos(x))))
    print(f"2. tridiagonal n=1e6: pattern + colouring {t_colour:.2f} s, Jacobian {t_jac:.2f} s, "
          f"peak traced memory {peak / 2**20:.0f} MiB, nnz {jac.nnz}, diagonal max error "
          f"{err:.1e}")


def network_torch() -> None:
    try:
        import torch
        import torch.func
    except ImportError:
        print("3. torch not installed: network comparison skipped")
        return
    from numdiffx.studies import make_mlp, network_for

    net = network_for(make_mlp("tanh"), "torch")
    x = net.asarray(np.random.default_rng(0).standard_normal((100, 5)))
    exact = torch.func.jacrev(net.f)(x)
    pattern = nd.SparsityPattern.per_sample((100, 5), (100, 5))
    res = best_times({
        "torch.func.jacrev": lambda: torch.func.jacrev(net.f)(x),
        "numdiffx central, per-sample": lambda: nd.jacobian(
            net.f, x, sparsity=pattern, sparse_output=False, evaluation="batched"),
        "numdiffx central, dense": lambda: nd.jacobian(net.f, x, evaluation="batched"),
    }, repeats=3)
    print("3. the report's tanh network, torch CPU float64, x (100, 5), min of 3:")
    for name, (t, jac) in res.items():
        print(f"   {name:30s} {ms(t)} ms   max |J - jacrev| {float((jac - exact).abs().max()):.1e}")
    t_rev, t_blk = res["torch.func.jacrev"][0], res["numdiffx central, per-sample"][0]
    print(f"   per-sample (11 evaluations) / jacrev: {t_blk / t_rev:.3f}; dense (1001) / "
          f"per-sample: {res['numdiffx central, dense'][0] / t_blk:.0f}x")


if __name__ == "__main__":
    tridiagonal_3000()
    banded_million()
    network_torch()
