"""Sparse-Jacobian targets (issue 7), measured in one run and printed as ratios.

1. Tridiagonal F_i = x_i^2 - x_{i-1} x_{i+1} + sin x_i at n = 3000: numdiffx with a
   given pattern and with a detected one vs scipy.optimize approx_derivative(sparsity=),
   errors against the analytic Jacobian.
2. n = 1e6: time and peak memory (tracemalloc) with a given banded pattern.
3. The report's network at x (100, 5) in torch: per-sample block structure vs
   torch.func.jacrev, same accuracy as numdiffx dense central.

Run: python benchmarks/sparse_targets.py
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import numdiffx as nd


def tridiag(x: np.ndarray) -> np.ndarray:
    left = np.concatenate([np.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)
    right = np.concatenate([x[..., 1:], np.zeros_like(x[..., :1])], axis=-1)
    return x**2 - left * right + np.sin(x)


def tridiag_exact(x: np.ndarray):
    import scipy.sparse as sp

    n = x.size
    main = 2 * x + np.cos(x)
    lower = -x[2:]  # dF_i/dx_{i-1} = -x_{i+1}, i = 1..n-2 (F_{n-1} has no right term)
    upper = -x[:-2]  # dF_i/dx_{i+1} = -x_{i-1}, i = 1..n-2 (F_0 has no left term)
    lower = np.concatenate([lower, [0.0]])
    upper = np.concatenate([[0.0], upper])
    return sp.diags_array([lower, main, upper], offsets=[-1, 0, 1], shape=(n, n)).toarray()


def band_pattern(n: int) -> nd.SparsityPattern:
    i = np.arange(n)
    rows = np.concatenate([i, i[1:], i[:-1]])
    cols = np.concatenate([i, i[:-1], i[1:]])
    return nd.SparsityPattern(rows, cols, (n, n))


def median_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up, excluded
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def tridiagonal_3000() -> None:
    from scipy.optimize._numdiff import approx_derivative

    n = 3000
    x = np.linspace(0.1, 2.0, n)
    exact = tridiag_exact(x)
    pattern = band_pattern(n)
    scipy_pattern = pattern.to_dense().astype(int)
    import scipy.sparse as sp

    scipy_sparsity = sp.csr_array(scipy_pattern)
    t_nd = median_time(lambda: nd.jacobian(tridiag, x, sparsity=pattern, evaluation="batched"))
    j_nd = nd.jacobian(tridiag, x, sparsity=pattern, evaluation="batched").toarray()
    t_sp = median_time(lambda: approx_derivative(tridiag, x, method="3-point",
                                                 sparsity=scipy_sparsity))
    j_sp = approx_derivative(tridiag, x, method="3-point", sparsity=scipy_sparsity).toarray()
    t0 = time.perf_counter()
    detected = nd.detect_sparsity(tridiag, x, evaluation="batched")
    _ = detected.colours
    t_detect = time.perf_counter() - t0
    t_det = median_time(lambda: nd.jacobian(tridiag, x, sparsity=detected, evaluation="batched"))
    e_nd = np.max(np.abs(j_nd - exact))
    e_sp = np.max(np.abs(j_sp - exact))
    print(f"1. tridiagonal n={n} (central / scipy '3-point'; median of 5, warm-up excluded)")
    print(f"   numdiffx, given pattern   : {t_nd * 1e3:7.2f} ms, max error {e_nd:.2e}, "
          f"{pattern.n_colours} colours")
    print(f"   scipy approx_derivative   : {t_sp * 1e3:7.2f} ms, max error {e_sp:.2e}")
    print(f"   ratio numdiffx / scipy    : {t_nd / t_sp:.2f} (target <= 2, at equal or better "
          "accuracy)")
    print(f"   detected pattern          : {t_det * 1e3:7.2f} ms per Jacobian, ratio "
          f"{t_det / t_sp:.2f}; one-time detection + colouring {t_detect:.2f} s "
          f"({detected.nnz} nonzeros, {detected.n_colours} colours)")


def banded_million() -> None:
    n = 1_000_000
    x = np.linspace(0.1, 2.0, n)
    tracemalloc.start()
    t0 = time.perf_counter()
    pattern = band_pattern(n)
    _ = pattern.colours
    t_colour = time.perf_counter() - t0
    t1 = time.perf_counter()
    j = nd.jacobian(tridiag, x, sparsity=pattern, evaluation="batched")
    t_jac = time.perf_counter() - t1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    err = np.max(np.abs(j.diagonal() - (2 * x + np.cos(x))))
    print(f"2. tridiagonal n=1e6: pattern + colouring {t_colour:.2f} s, Jacobian {t_jac:.2f} s, "
          f"peak traced memory {peak / 2**20:.0f} MiB, nnz {j.nnz}, diagonal max error {err:.1e}")


def network_torch() -> None:
    try:
        import torch
        import torch.func
    except ImportError:
        print("3. torch not installed: network benchmark skipped")
        return
    from numdiffx.studies import make_mlp, network_for

    net = network_for(make_mlp("tanh"), "torch").f  # the studies' same-weights network

    x = torch.tensor(np.random.default_rng(0).standard_normal((100, 5)))
    exact = torch.func.jacrev(net)(x)
    pattern = nd.SparsityPattern.per_sample((100, 5), (100, 5))
    t_rev = median_time(lambda: torch.func.jacrev(net)(x))
    t_blk = median_time(lambda: nd.jacobian(net, x, sparsity=pattern, sparse_output=False,
                                            evaluation="batched"))
    t_dense = median_time(lambda: nd.jacobian(net, x, evaluation="batched"), repeats=3)
    j_blk = nd.jacobian(net, x, sparsity=pattern, sparse_output=False, evaluation="batched")
    j_dense = nd.jacobian(net, x, evaluation="batched")
    print("3. report network, torch CPU float64, x (100, 5):")
    print(f"   torch.func.jacrev          : {t_rev * 1e3:7.2f} ms")
    print(f"   numdiffx per-sample blocks : {t_blk * 1e3:7.2f} ms, max error "
          f"{float((j_blk - exact).abs().max()):.2e} (11 evaluations instead of 1001)")
    print(f"   numdiffx dense central     : {t_dense * 1e3:7.2f} ms, max error "
          f"{float((j_dense - exact).abs().max()):.2e}")
    print(f"   speed-up over jacrev       : {t_rev / t_blk:.1f}x (target >= 10x)")


if __name__ == "__main__":
    tridiagonal_3000()
    banded_million()
    network_torch()
