"""Adaptive dense Jacobian vs scipy's ``approx_derivative`` 3-point on the same F (issue 17),
and its bookkeeping against its own evaluations of f (issue 37).

F is tridiagonal (``asv_bench/compare/adaptive_vs_scipy_3point.py``), n = 3000, dense
result on both sides. NOT the same accuracy: scipy ~1e-10, adaptive target <= 1e-12; the
tracked error says what the time buys. Targets: adaptive <= 4x scipy, peak memory <= 1 GB.
Issue 37 (``asv_bench/compare/adaptive_overhead_vs_f.py``): the call within 1.5x the time
of its own evaluations of f, and at n = 300 at most 0.1x ``scipy.differentiate.jacobian``'s
time at no worse error.
"""

from __future__ import annotations

import time

import numpy as np

import numdiffx as nd

from ._common import require_module, tracked


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

    track_adaptive_max_error = tracked("error", "abs error")
    track_scipy_max_error = tracked("scipy_error", "abs error")
    track_adaptive_nfev = tracked("nfev", "points")
    track_adaptive_over_scipy_time = tracked("ratio", "ratio")


class AdaptiveOverheadVsF:
    """The adaptive call over the time of its own evaluations of f (f wrapped with a
    timer), and over ``scipy.differentiate.jacobian`` at n = 300: ratios from one run,
    interleaved (min of 3), tracked."""

    n = 3000
    n_scipy = 300
    repeats = 3
    timeout = 900
    smoke_overrides = {"n": 40, "n_scipy": 20, "repeats": 1}

    def setup_cache(self):
        try:
            sd = require_module("scipy.differentiate")
        except NotImplementedError:
            return None
        rng = np.random.default_rng(0)
        x, x_small = rng.uniform(-1, 1, self.n), rng.uniform(-1, 1, self.n_scipy)
        spent = [0.0]

        def timed(z):
            t0 = time.perf_counter()
            y = tridiagonal(z)
            spent[0] += time.perf_counter() - t0
            return y

        def f_scipy(z):  # scipy: (n, ...) -> (n, ...)
            return np.moveaxis(tridiagonal(np.moveaxis(z, 0, -1)), -1, 0)

        def adaptive(f, z):
            return nd.jacobian(f, z, step=nd.steps.adaptive(), evaluation="batched",
                               full_output=True).value

        calls, in_f, ours, theirs = [], [], [], []
        for _ in range(self.repeats):  # round robin
            spent[0] = 0.0
            t0 = time.perf_counter()
            adaptive(timed, x)
            calls.append(time.perf_counter() - t0)
            in_f.append(spent[0])
            t0 = time.perf_counter()
            ours_value = adaptive(tridiagonal, x_small)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs_value = sd.jacobian(f_scipy, x_small).df
            theirs.append(time.perf_counter() - t0)
        n = self.n_scipy
        exact = np.diag(-2.0 + np.cos(x_small)) + np.eye(n, k=1) + np.eye(n, k=-1)
        best = int(np.argmin(np.subtract(calls, in_f)))  # (the run least disturbed)
        return {"call_over_f": calls[best] / in_f[best],
                "over_scipy": min(ours) / min(theirs),
                "error": float(np.max(np.abs(ours_value - exact))),
                "scipy_error": float(np.max(np.abs(theirs_value - exact)))}

    def setup(self, cache):
        if cache is None:
            raise NotImplementedError("scipy >= 1.15 is not installed")

    track_call_over_its_f_time = tracked("call_over_f", "ratio")
    track_over_scipy_differentiate = tracked("over_scipy", "ratio")
    track_max_error = tracked("error", "abs error")
    track_scipy_differentiate_max_error = tracked("scipy_error", "abs error")
