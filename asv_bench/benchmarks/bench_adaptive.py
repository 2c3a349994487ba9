"""Adaptive dense Jacobian vs scipy's ``approx_derivative`` 3-point on the same F (issue 17).

F is tridiagonal (``asv_bench/compare/adaptive_vs_scipy_3point.py``), n = 3000, dense
result on both sides. NOT the same accuracy: scipy ~1e-10, adaptive target <= 1e-12; the
tracked error says what the time buys. Targets: adaptive <= 4x scipy, peak memory <= 1 GB.
"""

from __future__ import annotations

import time

import numpy as np

import numdiffx as nd

from ._common import require_module


def tridiagonal(x):
    y = -2.0 * x + np.sin(x)
    y[..., 1:] += x[..., :-1]
    y[..., :-1] += x[..., 1:]
    return y


class AdaptiveTridiagonal:
    n = 3000
    timeout = 600
    smoke_overrides = {"n": 40}  # tests/test_asv_smoke.py runs the code path small

    def _x(self):
        return np.random.default_rng(0).uniform(-1, 1, self.n)

    def setup_cache(self):
        """One adaptive and one scipy Jacobian, timed once each in the same run."""
        try:
            numdiff = require_module("scipy.optimize._numdiff")
        except NotImplementedError:
            return None
        x, n = self._x(), self.n
        exact = np.diag(-2.0 + np.cos(x)) + np.eye(n, k=1) + np.eye(n, k=-1)
        t0 = time.perf_counter()
        r = nd.jacobian(tridiagonal, x, step=nd.steps.adaptive(), evaluation="batched",
                        full_output=True)
        t1 = time.perf_counter()
        scipy_jac = numdiff.approx_derivative(tridiagonal, x, method="3-point")
        t2 = time.perf_counter()
        return {"error": float(np.max(np.abs(r.value - exact))), "nfev": int(r.nfev),
                "scipy_error": float(np.max(np.abs(scipy_jac - exact))),
                "ratio": (t1 - t0) / (t2 - t1)}

    def setup(self, cache):
        if cache is None:
            raise NotImplementedError("scipy is not installed")
        self.x = self._x()

    def time_adaptive(self, cache):
        nd.jacobian(tridiagonal, self.x, step=nd.steps.adaptive(), evaluation="batched")

    def peakmem_adaptive(self, cache):
        nd.jacobian(tridiagonal, self.x, step=nd.steps.adaptive(), evaluation="batched")

    def time_scipy_3point(self, cache):
        from scipy.optimize._numdiff import approx_derivative

        approx_derivative(tridiagonal, self.x, method="3-point")

    def track_adaptive_max_error(self, cache):
        return cache["error"]

    track_adaptive_max_error.unit = "abs error"  # type: ignore[attr-defined]

    def track_scipy_max_error(self, cache):
        return cache["scipy_error"]

    track_scipy_max_error.unit = "abs error"  # type: ignore[attr-defined]

    def track_adaptive_nfev(self, cache):
        return cache["nfev"]

    track_adaptive_nfev.unit = "points"  # type: ignore[attr-defined]

    def track_adaptive_over_scipy_time(self, cache):
        return cache["ratio"]

    track_adaptive_over_scipy_time.unit = "ratio"  # type: ignore[attr-defined]
