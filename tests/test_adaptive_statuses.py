"""Adaptive statuses against the truth: no accurate result called a failure, no wrong one
called SUCCESS (issue 22; the cases come from numdifftools' and SciPy's own suites)."""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd

SUCCESS = int(nd.Status.SUCCESS)


@pytest.mark.parametrize("method", [nd.forward(order=4), nd.backward(order=4),
                                    nd.central(order=6), nd.forward(order=6)], ids=repr)
def test_high_order_stencils_succeed_where_the_tableau_is_accurate(xb, method):
    # x0 + x1**2 + x2**3 at x2 = 68 (f ~ 3e5): H_11 = 2 comes out accurate to 1e-9 with
    # an estimate of 1e-7; the stencils' one-step promise (3.7e-9 for forward order 4)
    # called it ROUNDOFF. SUCCESS for rtol=None is 100 sqrt(eps) at least.

    def f(x):
        return x[0] + x[1] ** 2 + x[2] ** 3

    x0 = [0.0, 16.003907623933742, 68.02057249966789]
    r = nd.hessian(f, xb.asarray(x0), method=method, step=nd.steps.adaptive(),
                   full_output=True)
    value, error = xb.to_numpy(r.value), xb.to_numpy(r.error)
    truth = np.diag([0.0, 2.0, 6 * x0[2]])
    # the diagonal (numdifftools' Hessdiag) all SUCCESS, every entry within its estimate
    assert np.all(np.diag(xb.to_numpy(r.status)) == SUCCESS), xb.to_numpy(r.status)
    assert np.all(np.abs(value - truth) <= error)


def test_complex_step_tableau_succeeds_at_its_accuracy(xb):
    # [x, x**2, x**3] at 1e3: the round-off of the largest output (1e9) gives d x/dx an
    # estimate of 6e-9, far above the complex step's one-step promise (100 eps), far
    # below 100 sqrt(eps): SUCCESS
    def f(x):
        return xb.xp.stack([x, x**2, x**3])

    r = nd.jacobian(f, xb.asarray(1e3), method=nd.complex_step(), step=nd.steps.adaptive(),
                    full_output=True)
    value = xb.to_numpy(r.value).ravel()
    assert np.all(xb.to_numpy(r.status) == SUCCESS)
    np.testing.assert_allclose(value, [1.0, 2e3, 3e6], rtol=1e-12)
    assert np.all(np.abs(value - [1.0, 2e3, 3e6]) <= xb.to_numpy(r.error).ravel())


def test_stopping_tolerance_still_decides_success():
    # the looser SUCCESS floor does not override a caller's rtol
    r = nd.derivative(np.exp, np.array([1.0]), method=nd.central(order=4),
                      step=nd.steps.adaptive(rtol=1e-15, max_steps=3), full_output=True)
    assert r.status[0] != SUCCESS


def _hamiltonian():
    w = 2 * np.pi * 1e6
    c = 2.307077552e-28  # e**2 / (4 pi epsilon_0)
    m = 39.96 * 1.66e-27

    def potential(x):
        return 0.5 * m * w**2 * (x[0] ** 2 + x[1] ** 2) + c / np.sqrt((x[0] - x[1]) ** 2)

    # the minimum: m w**2 x = c / (2 x)**2 at x = -x0 = x1
    a = (c / (4 * m * w**2)) ** (1.0 / 3.0)
    k = m * w**2
    coulomb = 2 * c / (2 * a) ** 3
    truth = np.array([[k + coulomb, -coulomb], [-coulomb, k + coulomb]])
    return potential, np.array([-a, a]), truth


def test_complex_step_tableau_beyond_the_scale_of_x_is_not_success():
    # numdifftools' 2-ion Hamiltonian (positions 2.8e-6): from steps of 0.06 the complex
    # points never see the Coulomb term (no imaginary part there); the levels agreed on
    # half the curvature with an estimate of 1e-24, SUCCESS
    potential, x, truth = _hamiltonian()
    r = nd.hessian(potential, x, method="complex_step", step=nd.steps.adaptive(),
                   full_output=True)
    d = np.sqrt(np.abs(np.diag(truth)))
    wrong = np.abs(r.value - truth) > 1e-4 * np.outer(d, d)
    assert wrong.any()  # (the steps are beyond x's scale: the values are wrong)
    assert not np.any(wrong & (r.status == SUCCESS)), r.status
    # given the scale, it succeeds
    good = nd.hessian(potential, x, method="complex_step",
                      step=nd.steps.adaptive(typical=1e-6, scale_with_x=False),
                      full_output=True)
    np.testing.assert_allclose(good.value, truth, rtol=1e-6)


def test_a_constant_is_success_where_atol_admits_its_roundoff_and_noise_never(xb):
    # 2 x**0 and 1e20 + x give the same bits at every point: 0.0 with the slope rounding
    # can hide as the estimate. SUCCESS only where the caller's atol admits that bound.
    def const(x):
        return 2 * x**0

    def swamped(x):
        return 1e20 + x

    x = xb.asarray([1.5])
    plain = nd.derivative(const, x, step=nd.steps.adaptive(), full_output=True)
    assert xb.to_numpy(plain.value)[0] == 0.0
    bound = float(xb.to_numpy(plain.error)[0])
    assert 0 < bound < 1e-13
    assert xb.to_numpy(plain.status)[0] == int(nd.Status.ROUNDOFF)
    admitted = nd.derivative(const, x, step=nd.steps.adaptive(atol=1e-13), full_output=True)
    assert xb.to_numpy(admitted.status)[0] == SUCCESS
    for atol in (0.0, 1e-13, 1e-3):
        r = nd.derivative(swamped, x, step=nd.steps.adaptive(atol=atol), full_output=True)
        assert xb.to_numpy(r.status)[0] != SUCCESS
        assert xb.to_numpy(r.error)[0] >= 1.0  # (the true slope, 1, is within it)
