"""Sparse Hessians (issue 34): star colouring from g, pattern stencils from f, detection.

An arrowhead (``x_0`` couples to every variable) and a chained Rosenbrock (tridiagonal)
at n = 2000: time and points of ``nd.hessian(grad=g, sparsity=P)`` (star colouring) vs
the column colouring of g's Jacobian (``nd.jacobian(g, sparsity=P)``: n colours on the
arrowhead), of ``nd.hessian(f, sparsity=P)`` and of ``sparsity="detect"``; ``track_``
the points and the error against the exact Hessian. The full table, n = 1000..100000
and the dense Hessians: ``asv_bench/compare/sparse_hessian_vs_dense.py``.
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd

from ._common import require_module
from ._hessian_problems import arrow, arrow_grad, arrow_hess, rosen, rosen_grad, rosen_hess

_PROBLEMS = {"arrowhead": (arrow, arrow_grad, arrow_hess),
             "rosenbrock": (rosen, rosen_grad, rosen_hess)}


class SparseHessian:
    params = [["arrowhead", "rosenbrock"],
              ["star colouring (g)", "column colouring (g)", "pattern (f)", "detect (f)"]]
    param_names = ["problem", "way"]
    n = 2000
    timeout = 300
    smoke_overrides = {"n": 200}

    def setup(self, problem, way):
        require_module("scipy.sparse")
        f, g, hess = _PROBLEMS[problem]
        n = self.n
        self.x = x = np.random.default_rng(1).uniform(0.0, 2.0, n)
        self.exact = hess(x).toarray()
        pattern = nd.SparsityPattern.from_any(self.exact != 0, (n, n))
        _ = pattern.colours
        calls = {
            "star colouring (g)": lambda: nd.hessian(None, x, grad=g, sparsity=pattern,
                                                     method="central", evaluation="batched",
                                                     full_output=True),
            "column colouring (g)": lambda: nd.jacobian(g, x, sparsity=pattern,
                                                        method="central",
                                                        evaluation="batched",
                                                        full_output=True),
            "pattern (f)": lambda: nd.hessian(f, x, sparsity=pattern, evaluation="batched",
                                              full_output=True),
            "detect (f)": lambda: nd.hessian(f, x, sparsity="detect", evaluation="batched",
                                             full_output=True),
        }
        self.call = calls[way]
        self.call()  # the star colouring is cached on the pattern

    def time_hessian(self, problem, way):
        self.call()

    def track_points(self, problem, way):
        return self.call().nfev

    def track_error(self, problem, way):
        value = self.call().value.toarray()
        return float(np.max(np.abs(value - self.exact)) / np.max(np.abs(self.exact)))
