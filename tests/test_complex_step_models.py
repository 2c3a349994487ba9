"""Complex step on likelihood-like functions (issue 22): the holomorphy test at a
stationary point, no zero-imaginary complex points, imaginary round-off of f."""

from __future__ import annotations

import math

import numpy as np
import pytest

import numdiffx as nd

A = np.array([[3.0, 1.0], [1.0, 2.0]]) * 200.0


def loglik(b):
    """A concave log-likelihood whose maximum is at b = 1 (slope 0 there)."""
    d = b - 1.0
    return -0.5 * np.einsum("...i,ij,...j->...", d, A, d)


@pytest.mark.parametrize("op", [nd.gradient, nd.hessian])
def test_holomorphy_test_is_not_fooled_by_a_zero_slope(op):
    x = np.ones(2)
    r = op(loglik, x, method="complex_step", full_output=True)
    want = np.zeros(2) if op is nd.gradient else -A
    np.testing.assert_allclose(r.value, want, atol=1e-5)
    assert np.all(r.status == nd.Status.SUCCESS)


def test_f_is_never_called_at_complex_points_with_zero_imaginary_part():
    seen = []

    def picky(b):
        if np.iscomplexobj(b):
            seen.append(b)
            if np.any(np.all(np.imag(b) == 0, axis=-1)):
                raise TypeError("a real code path behind np.iscomplexobj")
        return np.sum(np.exp(b) * b, axis=-1)

    x = np.array([0.5, 1.5])
    g = nd.gradient(picky, x, method="complex_step")
    np.testing.assert_allclose(g, np.exp(x) * (1 + x), rtol=1e-12)
    nd.hessian(picky, x, method="complex_step")
    assert seen  # the complex points were used


@pytest.mark.parametrize("x", [np.zeros(2), np.array([0.5, 1.5])])
def test_non_holomorphic_f_is_refused_or_flagged(x):
    f = lambda z: np.sum(np.conj(z) ** 2, axis=-1)  # noqa: E731
    try:
        r = nd.hessian(f, x, method="complex_step", full_output=True)
    except ValueError as e:
        assert "holomorphic" in str(e)
    else:  # at a stationary point the slope test cannot see it: the estimate must
        assert not np.any(r.status == nd.Status.SUCCESS)


@pytest.mark.parametrize("k", [1.0, 30.0, 300.0, 3000.0])
def test_fast_oscillation_at_large_x_is_not_a_false_alarm(k):
    x = np.array([0.5, 1.5, 1e3])
    nd.gradient(lambda z: np.sum(np.exp(np.cos(k * z)), axis=-1), x, method="complex_step")
    nd.hessian(lambda z: np.sum(np.sin(k * z), axis=-1), x, method="complex_step")


def test_complex_step_hessian_survives_imaginary_round_off_of_f():
    """Imaginary round-off of ~1e-15 |f| (a Kalman filter's): divided by the step, it
    must stay small (the former eps |x| step made it ~100%); the Hessian's mixed
    complex/real points divide it by h**2, h ~ eps**(1/3), as statsmodels' approx_hess_cs."""
    rng = np.random.default_rng(0)

    def noisy(b):
        v = np.sum(np.exp(0.3 * b) + b**3, axis=-1)
        if not np.iscomplexobj(v):
            return v
        return v + 1e-15j * np.abs(v) * rng.standard_normal(np.shape(v))

    x = np.array([0.7, 1.3, 2.0])
    want = np.diag(0.09 * np.exp(0.3 * x) + 6 * x)
    g = nd.gradient(noisy, x, method="complex_step")
    np.testing.assert_allclose(g, 0.3 * np.exp(0.3 * x) + 3 * x**2, rtol=1e-4)
    h = nd.hessian(noisy, x, method="complex_step")
    np.testing.assert_allclose(h, want, rtol=1e-3, atol=1e-3)


def test_complex_step_accepts_complex_dtype_values_with_zero_imaginary_part():
    f = lambda b: np.sum(np.asarray(b, dtype=complex) ** 3, axis=-1)  # noqa: E731
    x = np.array([0.5, 1.5])
    r = nd.gradient(f, x, method="complex_step", full_output=True)
    assert r.value.dtype == np.float64
    np.testing.assert_allclose(r.value, 3 * x**2, rtol=1e-14)
    np.testing.assert_allclose(nd.hessian(f, x, method="complex_step"), np.diag(6 * x),
                               rtol=1e-6)
    with pytest.raises(TypeError, match="real-valued f"):  # a complex-valued f is not
        nd.gradient(lambda b: np.sum(b * (1 + 1j), axis=-1), x, method="complex_step")


def test_complex_step_zero_imaginary_values_on_torch():
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5, 1.5], dtype=torch.float64)
    g = nd.gradient(lambda b: (b.to(torch.complex128) ** 3).sum(-1), x,
                    method="complex_step")
    assert g.dtype == torch.float64
    torch.testing.assert_close(g, 3 * x**2)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_adaptive_takes_complex_valued_f_and_complex_x(backend):
    if backend == "torch":
        torch = pytest.importorskip("torch")
        xp, asarray = torch, lambda a: torch.asarray(a)
    else:
        xp, asarray = np, np.asarray
    t = asarray(np.array([0.3, 1.0]))
    r = nd.derivative(lambda s: xp.exp(1j * s), t, step=nd.steps.adaptive(), full_output=True)
    np.testing.assert_allclose(np.asarray(r.value), 1j * np.exp(1j * np.array([0.3, 1.0])),
                               rtol=1e-12)
    assert np.all(np.asarray(r.status) == 0) and np.all(np.asarray(r.error) < 1e-10)
    z = asarray(np.array([0.3 + 0.2j, 1j]))
    h = nd.hessian(lambda s: (s**3).sum(), z, step=nd.steps.adaptive(), full_output=True)
    np.testing.assert_allclose(np.asarray(h.value), np.diag(6 * np.array([0.3 + 0.2j, 1j])),
                               atol=1e-10)
    assert np.all(np.asarray(h.status) == 0)
    j = nd.jacobian(lambda s: xp.sin(s), z, step=nd.steps.adaptive())
    np.testing.assert_allclose(np.asarray(j), np.diag(np.cos(np.array([0.3 + 0.2j, 1j]))),
                               rtol=1e-12, atol=1e-14)


def test_complex_hessian_steps_a_small_variance_on_a_tenth_of_typical(xb):
    # a Gaussian log-likelihood at its MLE with a variance of 6.8e-5 (the AR(2) of
    # docs/standard-errors.md): central's step at max(|x|, 1), 8.7e-6, is 13% of the
    # variance and its curvature came out 2.5e-3 off; at max(|x|, 0.1), 2.5e-7
    xp = xb.xp
    rng = np.random.default_rng(0)
    y_host = rng.normal(0.0078, np.sqrt(6.8e-5), 200)
    y = xb.asarray(y_host)
    n = y_host.size

    def f(p):
        return -0.5 * n * xp.log(p[1]) - xp.sum((y - p[0]) ** 2) / (2 * p[1])

    mu = y_host.mean()
    s2 = np.mean((y_host - mu) ** 2)
    ss = np.sum((y_host - mu) ** 2)
    truth = np.array([[-n / s2, 0.0], [0.0, n / (2 * s2**2) - ss / s2**3]])
    r = nd.hessian(f, xb.asarray([mu, s2]), method="complex_step", full_output=True)
    value = xb.to_numpy(r.value)
    assert abs(value[1, 1] / truth[1, 1] - 1) < 1e-5
    assert abs(value[0, 0] / truth[0, 0] - 1) < 1e-10
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(xb.to_numpy(r.step), 3 ** (1 / 3) * eps ** (1 / 3) * 0.1,
                               rtol=1e-6)
    # no entry SUCCESS while off by more than 1e-4 of sqrt(|H_ii H_jj|)
    d = np.sqrt(np.abs(np.diag(truth)))
    wrong = np.abs(value - truth) > 1e-4 * np.outer(d, d)
    assert not np.any(wrong & (xb.to_numpy(r.status) == nd.Status.SUCCESS))


def test_a_fixed_step_is_kept_by_the_complex_hessian():
    # the typical / 10 floor is auto's: fixed steps are the caller's, untouched
    r = nd.hessian(loglik, np.ones(2), method="complex_step", step=nd.steps.fixed(1e-5),
                   full_output=True)
    np.testing.assert_allclose(r.step, 1e-5)


def test_complex_hessian_of_a_regression_at_its_mle_is_success_and_accurate():
    # Poisson regression with coefficients of 0.01 to 0.3 (stepped at the typical / 10
    # floor): the estimate keeps max(|x|, 1) as f's scale and the measured slope (~0 at
    # the MLE) for the imaginary parts; with the floor's scale as f's, or the prior
    # slope |f| / s, 53 entries of statsmodels' Poisson accurate to 1e-11 failed
    rng = np.random.default_rng(7)
    x_cov = np.column_stack([np.ones(20000), rng.normal(size=(20000, 4))])
    b = np.array([0.3, -0.25, 0.04, -0.03, 0.01])
    y = rng.poisson(np.exp(x_cov @ b))
    # log(y!) as statsmodels adds it, and a constant: |f| ~ 1e5, what round-off scales with
    log_fact = float(np.sum([math.lgamma(k + 1.0) for k in y]))

    def loglik_poisson(beta):
        eta = x_cov @ beta
        return np.sum(y * eta - np.exp(eta)) - log_fact - 4e4

    # the MLE by Newton (concave)
    for _ in range(30):
        mu = np.exp(x_cov @ b)
        b = b + np.linalg.solve(x_cov.T @ (mu[:, None] * x_cov), x_cov.T @ (y - mu))
    truth = -x_cov.T @ (np.exp(x_cov @ b)[:, None] * x_cov)
    r = nd.hessian(loglik_poisson, b, method="complex_step", full_output=True)
    d = np.sqrt(np.abs(np.diag(truth)))
    assert np.max(np.abs(r.value - truth) / np.outer(d, d)) < 1e-9
    assert np.all(r.status == nd.Status.SUCCESS), r.status


def test_complex_hessian_on_a_collinear_design_claims_no_wrong_entry():
    # OLS on Longley (intercept -3.5e6, collinear covariates), the concentrated
    # likelihood: the intercept's step (30) is beyond f's scale; its diagonal came out
    # 4e-4 off with an estimate of 1e-11, SUCCESS. The real second difference at the
    # same step is off by its h**2 truncation, which bounds the complex one's h**4
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.longley.load_pandas()
    y = data.endog.to_numpy(float)
    x_cov = sm.add_constant(data.exog.to_numpy(float), prepend=True)
    n = y.size
    beta = np.linalg.lstsq(x_cov, y, rcond=None)[0]

    def concentrated(b):
        e = y - x_cov @ b
        return -0.5 * n * np.log(np.sum(e * e))

    ssr = float(np.sum((y - x_cov @ beta) ** 2))
    truth = -n / ssr * (x_cov.T @ x_cov)  # at the MLE (X' e = 0)
    r = nd.hessian(concentrated, beta, method="complex_step", full_output=True)
    d = np.sqrt(np.abs(np.diag(truth)))
    wrong = np.abs(r.value - truth) > 1e-4 * np.outer(d, d)
    assert wrong.any()
    assert not np.any(wrong & (r.status == nd.Status.SUCCESS)), np.argwhere(
        wrong & (r.status == nd.Status.SUCCESS))
