"""A Hessian's mixed entries stepped at their own error balance (``mixed_step_ratio``).

The diagonal's second-derivative stencil and the mixed (tensor-product) stencil balance
truncation against round-off at different steps; central differences: the mixed one at
exactly half the diagonal's. These tests check the ratio, that the points f receives are
really there on every backend, that the reported steps and the estimates stay in the
diagonal's terms (and honest), and that one step per variable from one call reproduces it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.plans.hessian import mixed_step_ratio

EPS = float(np.finfo(np.float64).eps)


def test_ratio_balances_the_two_stencils():
    assert mixed_step_ratio(nd.central(), EPS) == 0.5
    assert mixed_step_ratio(nd.central(), 1.19e-7) == 0.5  # eps cancels at equal orders
    assert mixed_step_ratio(nd.forward(), EPS) == 1.0
    assert mixed_step_ratio(nd.backward(), EPS) == 1.0
    assert mixed_step_ratio(nd.complex_step(), EPS) == 1.0
    # central order 4: (C_r**2 / (p C_t))**(1/6) against central(4, 2)'s constant
    m = nd.central(order=4)
    mixed = (m.roundoff_constant ** 2 / (4 * m.truncation_constant)) ** (1 / 6)
    expect = mixed / m.with_deriv(2).step_constant
    assert mixed_step_ratio(m, EPS) == pytest.approx(expect, rel=1e-12)
    assert 0.5 < expect < 1.0


def _recorded(xb, method, step):
    """(diagonal offsets, mixed offsets, result) of a loop-mode Hessian of a 3-vector."""
    seen: list[np.ndarray] = []

    def f(x):
        seen.append(xb.to_numpy(x).copy())
        return xb.xp.sum(xb.xp.exp(x) * xb.xp.cos(xb.xp.flip(x, axis=0)))

    x0 = np.array([0.3, -1.7, 2.5])
    r = nd.hessian(f, xb.asarray(x0), method=method, step=step, evaluation="loop",
                   full_output=True)
    offsets = np.array([p - x0 for p in seen])
    moved = (offsets != 0).sum(axis=1)
    return offsets[moved == 1], offsets[moved == 2], r, x0


ONE_PASS = nd.steps.relative(48 ** 0.25 * EPS ** 0.25)  # auto's step, no measurement


@pytest.mark.parametrize("step", [ONE_PASS, nd.steps.fixed(1e-3)], ids=["relative", "fixed"])
def test_central_mixed_points_at_half_the_diagonal_step(xb, step):
    diag, mixed, r, x0 = _recorded(xb, "central", step)
    h = xb.to_numpy(r.step)  # one per variable: the diagonal's
    assert h.shape == x0.shape
    if isinstance(step, nd.steps.fixed):
        assert np.allclose(h, 1e-3, rtol=1e-9)
    # the diagonal's points at +-h_i (x + h exactly representable)
    for i in range(3):
        col = np.abs(diag[:, i][diag[:, i] != 0])
        assert col.size and np.allclose(col, h[i], rtol=0, atol=0)
    # every mixed point at (+-h_i/2, +-h_j/2), representable, and none at the full step
    half = ((x0 + h / 2) - x0)
    for i in range(3):
        col = np.abs(mixed[:, i][mixed[:, i] != 0])
        assert col.size and np.array_equal(col, np.full(col.size, half[i]))
    assert np.all(np.isfinite(xb.to_numpy(r.value)))


def test_forward_mixed_points_at_the_diagonal_step(xb):
    _, mixed, r, x0 = _recorded(xb, "forward", nd.steps.auto())
    h = xb.to_numpy(r.step)
    for i in range(3):
        col = np.abs(mixed[:, i][mixed[:, i] != 0])
        assert col.size and np.all(np.isin(col, [h[i], (x0[i] + 2 * h[i]) - x0[i]]))


def _exact(x):
    """f = sum_i exp(a_i x_i) * prod of cos, with its Hessian."""
    a = np.array([0.7, -1.3, 2.1, 0.4])

    def f(z, xp=np):
        return xp.exp(xp.sum(a * z)) * xp.cos(z[0] * z[1]) + xp.sum(z ** 3) * z[2]

    e = math.exp(float(a @ x))
    c, s = math.cos(x[0] * x[1]), math.sin(x[0] * x[1])
    n = x.size
    H = np.outer(a, a) * e * c
    # the cos factor
    g = np.zeros(n)
    g[0], g[1] = -x[1] * s, -x[0] * s
    hc = np.zeros((n, n))
    hc[0, 0], hc[1, 1] = -x[1] ** 2 * c, -x[0] ** 2 * c
    hc[0, 1] = hc[1, 0] = -s - x[0] * x[1] * c
    H += e * (np.outer(a, g) + np.outer(g, a) + hc)
    # sum(z**3) * z[2]
    t = np.diag(6 * x * x[2])
    t[2, :] += 3 * x ** 2
    t[:, 2] += 3 * x ** 2
    H += t
    return f, H


@pytest.mark.parametrize("point", [[0.2, 0.5, -0.3, 1.1], [1.5, -2.0, 0.7, 0.05],
                                   [-0.4, 3.0, 1.2, -2.2]])
def test_one_pass_mixed_entries_more_accurate_than_at_the_diagonal_step(point):
    x = np.array(point)
    f, exact = _exact(x)
    r = nd.hessian(f, x, step=ONE_PASS, full_output=True)
    err = np.abs(r.value - exact)
    scale = np.sqrt(np.outer(np.abs(np.diag(exact)), np.abs(np.diag(exact)))) + 1.0
    # nothing SUCCESS while wrong beyond 1e-4 of its diagonals' scale
    success = np.asarray(r.status) == int(nd.Status.SUCCESS)
    assert not np.any(success & (err > 1e-4 * scale))
    off = ~np.eye(4, dtype=bool)
    # the old rule, mixed entries at the diagonal's step h: fixed(2 h) puts them there
    full = nd.hessian(f, x, step=nd.steps.fixed(2 * np.asarray(r.step)))
    err_full = np.abs(full - exact)
    assert np.max(err[off] / scale[off]) < np.max(err_full[off] / scale[off])


def test_fitted_steps_reused_by_fixed_reproduce_the_hessian():
    f, _ = _exact(np.array([0.2, 0.5, -0.3, 1.1]))
    x = np.array([0.2, 0.5, -0.3, 1.1])
    r = nd.hessian(f, x, step=nd.steps.fitted(), full_output=True)
    again = nd.hessian(f, x, step=nd.steps.fixed(r.step))
    assert np.array_equal(again, r.value)
