"""Sparse Jacobians vs scipy's ``approx_derivative(sparsity=...)``, like for like.

The tridiagonal F of ``asv_bench/compare/sparse_vs_scipy.py`` at n = 3000, central /
'3-point'. Both libraries can reuse their column grouping across calls, so two pairings:
``cached`` (numdiffx's pattern with colours cached vs scipy with ``(structure, groups)``
precomputed) and ``first call`` (a fresh pattern vs scipy grouping on every call).
``track_ratio_*`` measure numdiffx / scipy in one run. Also: a banded n = 1e5 Jacobian's
peak memory, and the report's tanh network on torch with the per-sample pattern.
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd

from ._common import mlp, ratio_of_min_times, require_module


def tridiag(x):
    left = np.concatenate([np.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)
    right = np.concatenate([x[..., 1:], np.zeros_like(x[..., :1])], axis=-1)
    return x**2 - left * right + np.sin(x)


def band(n):
    i = np.arange(n)
    return np.concatenate([i, i[1:], i[:-1]]), np.concatenate([i, i[:-1], i[1:]])


class SparseVsScipy:
    params = [["numdiffx cached", "scipy groups precomputed", "numdiffx first call",
               "scipy first call"]]
    param_names = ["implementation"]
    n = 3000

    def setup(self, implementation):
        numdiff = require_module("scipy.optimize._numdiff")
        sp = require_module("scipy.sparse")
        n, x = self.n, np.linspace(0.1, 2.0, self.n)
        rows, cols = band(n)
        pattern = nd.SparsityPattern(rows, cols, (n, n))
        _ = pattern.colours
        structure = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, n))
        groups = numdiff.group_columns(structure)
        ad = numdiff.approx_derivative
        self.calls = {
            "numdiffx cached": lambda: nd.jacobian(tridiag, x, sparsity=pattern,
                                                   evaluation="batched"),
            "scipy groups precomputed": lambda: ad(tridiag, x, method="3-point",
                                                   sparsity=(structure, groups)),
            "numdiffx first call": lambda: nd.jacobian(
                tridiag, x, sparsity=nd.SparsityPattern(rows, cols, (n, n)),
                evaluation="batched"),
            "scipy first call": lambda: ad(tridiag, x, method="3-point", sparsity=structure),
        }
        self.call = self.calls[implementation]

    def time_jacobian(self, implementation):
        self.call()


class SparseVsScipyRatio:
    """numdiffx / scipy, the colouring cached on both sides, then included on both sides."""

    unit = "ratio"

    def setup(self):
        self.cell = SparseVsScipy()
        self.cell.setup("numdiffx cached")

    def track_ratio_cached(self):
        c = self.cell.calls
        return ratio_of_min_times(c["numdiffx cached"], c["scipy groups precomputed"])

    def track_ratio_first_call(self):
        c = self.cell.calls
        return ratio_of_min_times(c["numdiffx first call"], c["scipy first call"])


class BandedLarge:
    """A given banded pattern at n = 1e5: colouring + Jacobian, time and peak memory."""

    n = 100_000
    timeout = 300

    def setup(self):
        self.x = np.linspace(0.1, 2.0, self.n)
        self.rows_cols = band(self.n)

    def _run(self):
        pattern = nd.SparsityPattern(*self.rows_cols, (self.n, self.n))
        return nd.jacobian(tridiag, self.x, sparsity=pattern, evaluation="batched")

    def time_pattern_and_jacobian(self):
        self._run()

    def peakmem_pattern_and_jacobian(self):
        self._run()


class PerSampleNetwork:
    """The report's tanh network at x (100, 5): per-sample pattern vs dense vs autodiff."""

    params = (["numpy", "torch"], ["numdiffx per-sample", "numdiffx dense", "jacrev"])
    param_names = ["backend", "method"]
    timeout = 120

    def setup(self, backend, method):
        net, x = mlp(backend, "tanh", "float64", 100)
        pattern = nd.SparsityPattern.per_sample((100, 5), (100, 5))
        if method == "jacrev":
            if backend != "torch":
                raise NotImplementedError("jacrev: torch only here")
            import torch.func

            self.call = lambda: torch.func.jacrev(net.f)(x)
        elif method == "numdiffx dense":
            self.call = lambda: nd.jacobian(net.f, x, evaluation="batched")
        else:
            self.call = lambda: nd.jacobian(net.f, x, sparsity=pattern, sparse_output=False,
                                            evaluation="batched")
        self.call()

    def time_jacobian(self, backend, method):
        self.call()
