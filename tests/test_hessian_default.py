"""The default central Hessian measures its diagonal before it steps the mixed entries.

Diagonal on ``x +- h e_i, x +- 2 h e_i`` (``h``: auto's step), its fourth difference
choosing each variable's step ``h*`` for the mixed entries (at ``rho h*``), within
``[h/16, 2 h]`` (``numdiffx/_core/strategies/measured.py``). These tests check the points
f receives on every backend, the cost, that it is more accurate than the one-pass rule at
auto's step where f curves faster than ``max(|x|, 1)`` says, that its estimates are
honest and its statuses refuse inconsistent points, and that it runs under ``jax.jit``.
"""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.plans.hessian import mixed_step_ratio

EPS = float(np.finfo(np.float64).eps)
ONE_PASS = nd.steps.relative(48 ** 0.25 * EPS ** 0.25)  # auto's step, no measurement
X0 = np.array([0.3, -1.7, 2.5])


def _f(xp):
    def f(x):
        return xp.sum(xp.exp(x) * xp.cos(xp.flip(x, axis=0))) + x[0] ** 2 * x[2] ** 3
    return f


def _recorded(xb):
    seen: list[np.ndarray] = []
    g = _f(xb.xp)

    def f(x):
        seen.append(xb.to_numpy(x).copy())
        return g(x)

    r = nd.hessian(f, xb.asarray(X0), evaluation="loop", full_output=True)
    offsets = np.array([p - X0 for p in seen])
    moved = (offsets != 0).sum(axis=1)
    return offsets[moved == 1], offsets[moved == 2], r


def test_points_steps_and_cost(xb):
    diag, mixed, r = _recorded(xb)
    n = X0.size
    assert r.nfev == 2 * n * n + 2 * n + 1
    h = (X0 + 48 ** 0.25 * EPS ** 0.25 * np.maximum(np.abs(X0), 1.0)) - X0
    h_star = xb.to_numpy(r.step)
    assert np.all((h / 16 <= h_star) & (h_star <= 2 * h))
    rho = mixed_step_ratio(nd.central(), EPS)
    for i in range(n):
        d = diag[:, i][diag[:, i] != 0]  # +-h and +-2h along axis i, four points
        assert d.size == 4 and np.allclose(np.sort(np.abs(d)), [h[i], h[i], 2 * h[i], 2 * h[i]],
                                           rtol=1e-12, atol=0)
        m = np.abs(mixed[:, i][mixed[:, i] != 0])  # +-rho h*_i, representable
        assert m.size and np.array_equal(m, np.full(m.size, (X0[i] + rho * h_star[i]) - X0[i]))
    assert r.status_counts() == {"SUCCESS": n * n}


def _logit_problem():
    """A logistic log-likelihood at its maximum, covariates of scale ~10 (f curves on the
    scale of the linear predictor, far faster than max(|x|, 1)), with its exact Hessian."""
    rng = np.random.default_rng(7)
    X = np.column_stack([np.ones(200), rng.normal(0, 10, 200), rng.normal(5, 3, 200)])
    y = (rng.uniform(size=200) < 1 / (1 + np.exp(-(X @ [0.5, 0.2, -0.1])))).astype(float)

    def loglike(b):
        z = X @ b
        return float(np.sum(y * z - np.logaddexp(0, z)))

    def hess(b):
        p = 1 / (1 + np.exp(-(X @ b)))
        return -(X.T * (p * (1 - p))) @ X

    b = np.zeros(3)
    for _ in range(50):  # Newton to the maximum
        p = 1 / (1 + np.exp(-(X @ b)))
        b = b - np.linalg.solve(hess(b), X.T @ (y - p))
    return loglike, b, hess(b)


def test_more_accurate_than_the_one_pass_rule_and_honest():
    f, b, exact = _logit_problem()
    r = nd.hessian(f, b, full_output=True)
    old = nd.hessian(f, b, step=ONE_PASS)
    se = np.sqrt(np.diag(np.linalg.inv(-exact)))

    def se_error(h):
        return np.max(np.abs(np.sqrt(np.diag(np.linalg.inv(-h))) / se - 1))

    assert se_error(r.value) < 0.2 * se_error(old)
    assert se_error(r.value) < 1e-6
    assert np.all(np.abs(r.value - exact) <= r.error)
    assert r.status_counts() == {"SUCCESS": 9}


def test_points_across_a_domain_edge_are_never_success():
    # a variance of 5e-4: x - h stays positive, x - 2 h does not, and the likelihood
    # returns a finite 0.0 there (as statsmodels' ARIMA does)
    def loglike(t):
        v = t[0]
        return -50 * np.log(v) - 50 * 4e-4 / v if v > 0 else 0.0

    x = np.array([5e-4])
    h = 48 ** 0.25 * EPS ** 0.25
    assert x[0] - h > 0 > x[0] - 2 * h
    r = nd.hessian(loglike, x, full_output=True)
    assert r.status_names.tolist() != [["SUCCESS"]]


def test_a_quadratic_takes_the_largest_step_and_is_exact_to_round_off():
    A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 4.0]])
    x = np.array([0.3, 0.7, -0.2])
    r = nd.hessian(lambda v: 0.5 * v @ A @ v, x, full_output=True)
    h = (x + 48 ** 0.25 * EPS ** 0.25 * np.maximum(np.abs(x), 1.0)) - x
    # no fourth derivative: the measured A is round-off, and the step grows (up to 2 h)
    assert np.all((h < r.step) & (r.step <= 2 * h))
    np.testing.assert_allclose(r.value, A, atol=1e-7)
    assert r.status_counts() == {"SUCCESS": 9}


def test_several_outputs_share_the_smallest_step():
    x = np.array([0.4, -0.8])

    def f1(v):
        return np.exp(3 * v[0]) * np.sin(v[1])

    def f2(v):
        return np.cos(v[0] * v[1]) + v[1] ** 4

    both = nd.hessian(lambda v: np.array([f1(v), f2(v)]), x, full_output=True)
    s1 = nd.hessian(f1, x, full_output=True).step
    s2 = nd.hessian(f2, x, full_output=True).step
    np.testing.assert_array_equal(both.step, np.minimum(s1, s2))


def test_under_jit():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    f = _f(jnp)
    x = jnp.asarray(X0)
    eager = nd.hessian(f, x, full_output=True)
    jitted = jax.jit(lambda v: nd.hessian(f, v, full_output=True))(x)
    # XLA compiles f itself differently (the one-pass rule's jitted Hessian differs from
    # its eager one by 3e-8 here): the same decisions, the steps within the fourth root
    # of that round-off in the measured fourth difference, not the same bits
    exact = np.asarray(jax.hessian(f)(x))
    for r in (eager, jitted):
        assert np.all(np.abs(np.asarray(r.value) - exact) <= np.asarray(r.error))
        assert r.status_counts() == {"SUCCESS": 9}
    h = (X0 + 48 ** 0.25 * EPS ** 0.25 * np.maximum(np.abs(X0), 1.0)) - X0
    np.testing.assert_allclose(np.asarray(jitted.step), np.asarray(eager.step), rtol=0.1)
    assert np.all((h / 16 <= np.asarray(jitted.step)) & (np.asarray(jitted.step) <= 2 * h))


def test_f_zero_at_x_keeps_autos_step():
    # f(x) = 0 says nothing about f's round-off: no measured balance, auto's step stands
    x = np.zeros(2)
    r = nd.hessian(lambda v: v[0] ** 2 * v[1] ** 2 + np.sin(v[0]) * v[1], x, full_output=True)
    h = (x + 48 ** 0.25 * EPS ** 0.25) - x
    np.testing.assert_array_equal(r.step, h)
    np.testing.assert_allclose(r.value, [[0.0, 1.0], [1.0, 0.0]], atol=1e-9)
    assert r.status_counts() == {"SUCCESS": 4}


def test_nan_beyond_2h_falls_back_to_the_three_point_value():
    # smooth inside a box, NaN outside; x + 2h leaves it, x + h does not: the diagonal
    # takes the three-point value at h (as the one-pass rule), judged as that rule judges it
    def f(t):
        if t[0] > 1.0005:
            return np.nan
        return np.exp(t[0]) * np.cos(t[1]) + t[0] ** 2 * t[1]

    x = np.array([1.0, 0.4])
    r = nd.hessian(f, x, full_output=True, evaluation="loop")
    e, c, s = np.e, np.cos(0.4), np.sin(0.4)
    exact = np.array([[e * c + 0.8, 2 - e * s], [2 - e * s, -e * c]])
    assert np.all(np.isfinite(r.value))
    assert np.all(np.abs(r.value - exact) <= r.error)
    assert r.status_counts() == {"SUCCESS": 4}
    one_pass = nd.hessian(f, x, step=ONE_PASS, evaluation="loop")
    assert r.value[0, 0] == one_pass[0, 0]  # the same three points, the same value


def test_a_feature_narrower_than_the_step_is_never_success():
    # a bump of width 1e-6 on a unit parabola, at x = 1e-6: the points at +-h, +-2h
    # (h ~ 3e-4) are consistent with the parabola alone (curvature 1, truth 1.74), but the
    # curvature changes f by more than f itself within one step (numdifftools' 2-ion
    # Hamiltonian is of this kind)
    def f(t):
        return 0.5 * t[0] ** 2 + 1e-12 * np.exp(-((t[0] / 1e-6) ** 2))

    r = nd.hessian(f, np.array([1e-6]), full_output=True)
    exact = 1.0 + 1e-12 * np.exp(-1.0) * (4 / 1e-12 - 2 / 1e-12)
    assert abs(r.value[0, 0] - exact) > 0.5  # the points cannot see it
    assert r.status_names.tolist() != [["SUCCESS"]]
    assert r.error[0, 0] >= 0.5 * abs(r.value[0, 0] - exact)
