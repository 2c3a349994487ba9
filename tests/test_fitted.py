"""steps.fitted() and the default's honesty on badly scaled parameters (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd

N, S2 = 200, 6.8e-5


def loglike(t):
    """A Gaussian mean and variance (6.8e-5, as an AR(2) on log-differenced GDP) whose
    likelihood, like statsmodels', returns a finite value (0.0) for a negative variance."""
    mu, v = t[0], t[1]
    if v <= 0:
        return 0.0
    return -0.5 * N * np.log(v) - 0.5 * N * (S2 + (mu - 0.01) ** 2) / v


X = np.array([0.01, S2])
EXACT = np.array([[-N / S2, 0.0], [0.0, 0.5 * N / S2**2 - N * S2 / S2**3]])


def test_default_never_claims_success_at_inconsistent_points():
    r = nd.hessian(loglike, X, full_output=True)
    wrong = np.abs(r.value - EXACT) > 1e-4 * np.sqrt(np.outer(*[np.abs(np.diag(EXACT))] * 2))
    assert not np.any(wrong & (r.status == nd.Status.SUCCESS))
    assert wrong.any()  # (the default step, >= 3e-4, leaves the domain: it is wrong here)


def test_fitted_finds_the_variance_scale_and_its_steps_are_reusable():
    r = nd.hessian(loglike, X, step=nd.steps.fitted(), full_output=True)
    np.testing.assert_allclose(r.value, EXACT, rtol=1e-6, atol=1e-6 * abs(EXACT[1, 1]))
    assert np.all(r.status == nd.Status.SUCCESS)
    assert r.step.shape == X.shape and r.step[1] < 1e-5  # the variance's own scale
    assert r.nfev <= 2 * (2 * 2**2 + 1) + 16  # the pilot costs a few evaluations per variable
    again = nd.hessian(loglike, X, step=nd.steps.fixed(r.step), full_output=True)
    np.testing.assert_allclose(again.value, r.value, rtol=1e-12)
    assert again.nfev < r.nfev  # no pilot


def test_fitted_gradient_matches_auto_on_well_scaled_f():
    x = np.array([0.3, 1.7, -2.0])
    f = lambda t: np.sum(np.sin(t) * np.exp(0.1 * t))  # noqa: E731
    want = np.cos(x) * np.exp(0.1 * x) + 0.1 * np.sin(x) * np.exp(0.1 * x)
    r = nd.gradient(f, x, step=nd.steps.fitted(), full_output=True)
    np.testing.assert_allclose(r.value, want, rtol=1e-9)
    assert np.all(r.status == nd.Status.SUCCESS)


@pytest.mark.parametrize("bad", [{"noise": "guess"}, {"noise": -1.0}, {"trials": 0},
                                 {"typical": 0.0}])
def test_fitted_refuses_bad_options(bad):
    with pytest.raises(ValueError, match="fitted"):
        nd.steps.fitted(**bad)


def test_fitted_refuses_the_complex_step():
    with pytest.raises(ValueError, match="complex"):
        nd.hessian(loglike, X, step=nd.steps.fitted(), method="complex_step")


def test_quadratic_off_its_maximum_is_success_with_the_default():
    a = np.array([[3.0, 1.0], [1.0, 2.0]]) * 200.0

    def q(b):
        d = b - 1.0
        return -0.5 * d @ a @ d

    for x in (np.ones(2), np.full(2, 1.1)):
        r = nd.hessian(q, x, full_output=True)
        np.testing.assert_allclose(r.value, -a, rtol=1e-6)
        assert np.all(r.status == nd.Status.SUCCESS)


def test_adaptive_hessian_mixed_entries_inherit_a_failed_diagonal():
    # f is kinked along x1 at x: the (1, 1) entry cannot succeed, so neither can (0, 1),
    # whose points straddle the same kink
    f = lambda t: t[0] * t[1] + np.abs(t[1] - 0.5) ** 1.5  # noqa: E731
    r = nd.hessian(f, np.array([0.3, 0.5]), step=nd.steps.adaptive(), full_output=True)
    assert r.status[1, 1] != nd.Status.SUCCESS
    assert r.status[0, 1] == r.status[1, 0] == r.status[1, 1]  # (alone they agree: 1.0)
    assert r.status[0, 0] == nd.Status.SUCCESS  # an exact 0.0 diagonal is no failure
    assert r.error[0, 1] >= np.sqrt(r.error[0, 0] * r.error[1, 1])


@pytest.mark.parametrize("q", [4, 6, 8])
def test_adaptive_high_derivatives_accurate_are_success_and_inaccurate_are_not(q):
    x = np.array([0.5])
    r = nd.derivative(np.exp, x, method=nd.central(deriv=q), step=nd.steps.adaptive(),
                      full_output=True)
    err = abs(r.value[0] / np.exp(0.5) - 1)
    if err <= 1e-6:
        assert r.status[0] == nd.Status.SUCCESS, (q, err, r.error)
    if err > 1e-4:
        assert r.status[0] != nd.Status.SUCCESS, (q, err, r.error)
    assert r.error[0] >= abs(r.value[0] - np.exp(0.5))  # the estimate bounds the error


def test_adaptive_zero_hessian_diagonal_is_judged_against_the_matrix():
    f = lambda t: t[0] + t[1] ** 2 + t[2] ** 3  # noqa: E731 - numdifftools' Hessdiag test
    x = np.full(3, 68.0206)
    r = nd.hessian(f, x, step=nd.steps.adaptive(), full_output=True)
    np.testing.assert_allclose(np.diag(r.value), [0.0, 2.0, 6 * 68.0206], atol=1e-6)
    assert np.all(np.diag(r.status) == nd.Status.SUCCESS)


@pytest.mark.parametrize(("x", "q"), [(2.220446e-14, 1), (2.220446e-14, 3), (7.65645, 5),
                                      (5.0, 6)])
def test_default_success_means_within_tolerance_of_the_value(x, q):
    # numdifftools' test_derivative_of_cos_x points: SUCCESS answers were 1e-4 off
    r = nd.derivative(np.cos, np.array([x]), method=nd.central(deriv=q), full_output=True)
    exact = [-np.sin(x), np.cos(x), -np.sin(x), -np.cos(x)][(q - 1) % 4]
    if r.status[0] == nd.Status.SUCCESS:
        # a first derivative is judged against the scale it varies on, |f''| max(|x|, 1)
        # where f visibly curves (issue 33: cos' at 2e-14 is a stationary point, 0 is right)
        scale = abs(exact) if q > 1 else max(abs(exact), abs(np.cos(x)) * max(abs(x), 1.0))
        assert abs(r.value[0] - exact) <= 1e-4 * scale
        assert r.error[0] <= max(abs(r.value[0]), 1e-4 * scale)
        assert r.error[0] >= abs(r.value[0] - exact)


def test_adaptive_estimate_is_never_below_the_smallest_normal_float():
    # numdifftools' Hessdiag example at x = 1.2e-314: the x2**3 term is 0.0 at every
    # step, the true diagonal 7.2e-314; an estimate of exactly 0 claimed it exact
    x = np.full(3, 1.2009289063e-314)
    r = nd.hessian(lambda t: t[0] + t[1] ** 2 + t[2] ** 3, x, step=nd.steps.adaptive(),
                   full_output=True)
    assert np.all(r.error >= np.finfo(float).smallest_normal)
    assert abs(r.value[2, 2] - 6 * x[2]) <= r.error[2, 2]
    assert np.all(np.diag(r.status) == nd.Status.SUCCESS)


def test_adaptive_bounds_with_x_on_a_bound():
    # scipy.differentiate's test_step_direction: exp on [0, 2], NaN outside; x = 0 and
    # x = 2 gave step 0 (log2(0): a RuntimeWarning) and NaN
    f = lambda x: np.where((x < 0) | (x > 2), np.nan, np.exp(x))  # noqa: E731
    x = np.linspace(0, 2, 10)
    r = nd.derivative(f, x, step=nd.steps.adaptive(bounds=(0.0, 2.0)), full_output=True)
    np.testing.assert_allclose(r.value, np.exp(x), rtol=1e-11)
    assert np.all(r.status == nd.Status.SUCCESS)


def test_adaptive_check_does_not_replace_an_exact_tableau_at_a_triple_root():
    # scipy's test_saddle_gh18811: central one-step at x = 1 of (x - 1)**3 is h**2 with
    # an estimate of 1e-21; it must not overrule the tableau's exact 0
    r = nd.derivative(lambda x: (x - 1) ** 3, np.array([1.0]),
                      step=nd.steps.adaptive(atol=1e-16, rtol=0.0), full_output=True)
    assert abs(r.value[0]) <= 1e-16 and r.status[0] == nd.Status.SUCCESS


def test_adaptive_jacobian_column_nan_on_one_side_goes_one_sided():
    # scipy's test_step_direction_size: x on the edge of a box outside which f is NaN
    b = np.array([0.3, 0.6, 0.2])

    def f(x):
        x = np.array(x, dtype=float)
        x[0] = np.where((x[0] < b[0]) | (x[0] > b[0] + 0.25), np.nan, x[0])
        x[1] = np.where((x[1] > b[1]) | (x[1] < b[1] - 0.1), np.nan, x[1])
        return np.array([np.exp(x[0]) * x[1], np.sin(x[1]) + x[2] ** 2, x[0] * x[1] * x[2]])

    r = nd.jacobian(f, b, step=nd.steps.adaptive(), full_output=True)
    want = np.array([[np.exp(0.3) * 0.6, np.exp(0.3), 0.0], [0.0, np.cos(0.6), 0.4],
                     [0.12, 0.06, 0.18]])
    np.testing.assert_allclose(r.value, want, rtol=1e-10, atol=1e-12)
    assert np.all(r.status[:, :2] == nd.Status.ONE_SIDED)
    assert np.all(r.status[:, 2] == nd.Status.SUCCESS)
