"""Statuses where users look most (issue 33): stationary points, symmetric kinks, the
complex step's own truncation, and the gradient checks' drop-in fidelity.

At a stationary point of a smooth f the derivative's scale is how fast it varies,
``|f''| max(|x|, typical)``, measured by a probe of the second difference at the auto
step and twice it (numdiffx/_core/strategies/stationary.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import numdiffx as nd
from numdiffx import Status

ADAPTIVE = nd.steps.adaptive()
RULES = [pytest.param({}, id="default"), pytest.param({"step": ADAPTIVE}, id="adaptive")]
EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).smallest_normal)  # the adaptive estimates' floor

_rng = np.random.default_rng(0)
_M = _rng.standard_normal((4, 4))
A = _M @ _M.T + 4 * np.eye(4)
B = _rng.standard_normal(4)
X_MIN = np.linalg.solve(A, B)


def quadratic(x):
    return 0.5 * np.einsum("...i,ij,...j->...", x, A, x) - x @ B + 100.0


def rosenbrock(x):
    return np.sum(100.0 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2,
                  axis=-1)


def _logistic():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(200), rng.standard_normal((200, 2))])
    y = (rng.random(200) < 1 / (1 + np.exp(-X @ [0.3, 1.0, -0.5]))).astype(float)

    def loglik(w):
        z = w @ X.T
        return np.sum(y * z - np.logaddexp(0, z), axis=-1)

    w = np.zeros(3)
    for _ in range(50):  # Newton to the MLE
        p = 1 / (1 + np.exp(-X @ w))
        w = w + np.linalg.solve((X.T * (p * (1 - p))) @ X, X.T @ (y - p))
    score = X.T @ (y - 1 / (1 + np.exp(-X @ w)))
    return loglik, w, score


def _cases():
    loglik, w, score = _logistic()
    return {
        "quadratic": (lambda **k: nd.gradient(quadratic, X_MIN, **k), np.zeros(4),
                      quadratic(X_MIN)),
        "logistic": (lambda **k: nd.gradient(loglik, w, **k), score, loglik(w)),
        "cos_at_pi": (lambda **k: nd.derivative(np.cos, np.array([np.pi]), **k),
                      np.array([-np.sin(np.pi)]), -1.0),
        "rosenbrock": (lambda **k: nd.gradient(rosenbrock, np.ones(3), **k), np.zeros(3), 0.0),
    }


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("name", ["quadratic", "logistic", "cos_at_pi", "rosenbrock"])
def test_a_stationary_point_of_a_smooth_f_is_success_with_a_tight_estimate(name, rule):
    run, truth, f_value = _cases()[name]
    r = run(full_output=True, **rule)
    assert r.status_counts() == {"SUCCESS": r.status.size}, r.status_names
    r.raise_for_status()  # silent
    true_error = np.abs(r.value - truth)
    assert np.all(true_error <= r.error), (true_error, r.error)
    # no more than 100x the true error or 100 eps |f| / h, whichever is larger
    bound = np.maximum(100 * true_error, 100 * EPS * abs(f_value) / np.abs(r.step))
    assert np.all(r.error <= np.maximum(bound, TINY)), (r.error, bound)


@pytest.mark.parametrize("rule", RULES)
def test_a_stationary_point_on_every_backend(xb, rule):
    x = xb.asarray(X_MIN)
    a, b = xb.asarray(A), xb.asarray(B)
    xp = xb.xp

    def f(v):
        return 0.5 * xp.sum(v * (v @ a), axis=-1) - v @ b + 100.0

    r = nd.gradient(f, x, full_output=True, **rule)
    assert xb.to_numpy(r.status).tolist() == [int(Status.SUCCESS)] * 4
    assert np.all(np.abs(xb.to_numpy(r.value)) <= xb.to_numpy(r.error))


@pytest.mark.parametrize("rule", RULES)
def test_a_constant_and_a_swamped_slope_keep_the_same_status(rule):
    # 2 x**0 and 1e20 + x give the same bits at every point: no rule calls one SUCCESS
    swamped = nd.derivative(lambda x: 1e20 + x, np.array([1.5]), full_output=True, **rule)
    const = nd.derivative(lambda x: 2 * x**0, np.array([1.5]), full_output=True, **rule)
    assert swamped.status_names.tolist() == const.status_names.tolist() == ["ROUNDOFF"]
    assert swamped.error[0] >= 1.0  # (the true slope, 1, is within it)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("level", [1e-8, 1e-3])
def test_a_noisy_f_at_its_minimum_is_never_success(rule, level):
    rng = np.random.default_rng(3)
    r = nd.derivative(lambda x: (x - 1) ** 2 + level * rng.standard_normal(np.shape(x)),
                      np.array([1.0]), full_output=True, **rule)
    assert r.status[0] != Status.SUCCESS, r
    assert abs(r.value[0]) <= r.error[0]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fun", [np.abs, lambda x: np.abs(x) + x**2, lambda x: np.abs(x) + 1],
                         ids=["abs", "abs_plus_square", "abs_plus_one"])
def test_a_symmetric_kink_is_never_success(fun, dtype, rule):
    """|x| at 0 is 0 at every step: the tableau's levels agree exactly (SUCCESS, an estimate
    of 2e-308, before); the second difference doubling as the step halves says kink."""
    r = nd.derivative(fun, np.zeros(1, dtype=dtype), full_output=True, **rule)
    assert r.status[0] != Status.SUCCESS, r
    with pytest.raises(FloatingPointError):
        r.raise_for_status()


@pytest.mark.parametrize("fun", [lambda x: 0 * x, lambda x: x**3, lambda x: x**4,
                                 lambda x: x**2],
                         ids=["zero", "cube", "quartic", "square"])
def test_smooth_flat_points_stay_success_under_adaptive(fun):
    """Where f does not visibly curve (0 * x, x**3 at 0) or its curvature grows with the
    step (x**4 at 0), the status stays what it was: exact levels, SUCCESS."""
    r = nd.derivative(fun, np.zeros(1), step=ADAPTIVE, full_output=True)
    assert r.status_names.tolist() == ["SUCCESS"] and r.value[0] == 0.0


def test_the_probe_costs_nothing_where_every_entry_succeeds():
    x = np.array([0.5, 1.5, 2.5])
    r = nd.gradient(lambda v: np.sum(np.exp(v), axis=-1), x, full_output=True)
    assert r.status_counts() == {"SUCCESS": 3} and r.nfev == 2 * 3 + 1


# --- the complex step measures its own truncation ---------------------------------------
def _quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit()


def test_gamma_glm_complex_step_score_is_right_or_not_success():
    sm = pytest.importorskip("statsmodels.api")
    d = sm.datasets.scotland.load_pandas()
    model = _quiet(lambda: sm.GLM(d.endog.to_numpy(float),
                                  sm.add_constant(d.exog.to_numpy(float), prepend=False),
                                  family=sm.families.Gamma()))
    res = _quiet(model.fit)
    params, scale = np.asarray(res.params), float(res.scale)
    truth = np.asarray(model.score(params, scale=scale))
    r = nd.gradient(lambda p: model.loglike(p, scale=scale), params, method="complex_step",
                    evaluation="loop", full_output=True)
    wrong = np.abs(r.value - truth) > 1e-6 * np.max(np.abs(truth))
    assert not np.any(wrong & (r.status == Status.SUCCESS)), (r.value, r.status_names)
    assert np.all(np.abs(r.value - truth) <= r.error)  # the estimate sees the truncation


def test_complex_step_at_a_stationary_point_stays_success():
    r = nd.gradient(quadratic, X_MIN, method="complex_step", full_output=True)
    assert r.status_counts() == {"SUCCESS": 4}
    assert np.all(np.abs(r.value) <= r.error + 1e-15)


# --- five fitted models: the score at the MLE -------------------------------------------
def _beta_regression():
    sm = pytest.importorskip("statsmodels.api")
    from statsmodels.othermod.betareg import BetaModel

    rng = np.random.default_rng(0)
    X = sm.add_constant(rng.standard_normal((200, 2)))
    mu = 1 / (1 + np.exp(-(X @ [0.2, 0.5, -0.3])))
    y = rng.beta(mu * 20, (1 - mu) * 20)
    model = BetaModel(y, X)
    return model, np.asarray(_quiet(lambda: model.fit(disp=0)).params)


def _discrete(kind):
    sm = pytest.importorskip("statsmodels.api")
    if kind in ("logit", "probit"):
        d = sm.datasets.spector.load_pandas()
        x = sm.add_constant(d.exog.to_numpy(float), prepend=True)
        model = (sm.Logit if kind == "logit" else sm.Probit)(d.endog.to_numpy(float), x)
    else:
        d = sm.datasets.randhie.load_pandas()
        x = sm.add_constant(d.exog.to_numpy(float), prepend=False)
        y = d.endog.to_numpy(float)
        model = sm.Poisson(y, x) if kind == "poisson" else sm.NegativeBinomial(y, x)
    return model, np.asarray(_quiet(lambda: model.fit(disp=0, maxiter=200)).params)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("kind", ["logit", "probit", "poisson", "negbin", "beta"])
def test_scores_of_fitted_models_at_the_mle_are_success(kind, rule):
    model, params = _beta_regression() if kind == "beta" else _discrete(kind)
    truth = np.asarray(model.score(params))
    r = nd.gradient(model.loglike, params, evaluation="loop", full_output=True, **rule)
    assert r.status_counts() == {"SUCCESS": params.size}, (r.status_names, r.error)
    assert np.all(np.abs(r.value - truth) <= r.error)


# --- gradient checks --------------------------------------------------------------------
def _failing_check(factor):
    x = np.array([0.2, 0.4, 0.9])
    nd.gradcheck(np.sin, (x,), reference=lambda a: np.diag(np.cos(a)) * factor)


@pytest.mark.parametrize("catch", [RuntimeError, AssertionError, nd.GradcheckError])
def test_a_failed_check_is_both_a_runtime_and_an_assertion_error(catch):
    with pytest.raises(catch):
        _failing_check(2.0)


def test_a_uniform_small_offset_names_both_readings():
    with pytest.raises(nd.GradcheckError) as info:
        _failing_check(1 + 8.9e-5)
    first = str(info.value).splitlines()[0]
    assert "uniform relative offset of +8.9e-05" in first
    assert "approximate by design" in first and "adjoint" in first
    assert "wrong constant factor" in first
    assert "default atol=1e-5, rtol=1e-3 would pass it" in first


def test_a_large_factor_is_still_called_a_constant_factor():
    with pytest.raises(nd.GradcheckError, match=r"2 times the true derivative everywhere"):
        _failing_check(2.0)


# --- hvp with grad= takes the forms it takes without ------------------------------------
@pytest.mark.parametrize("wrap", [tuple, list])
def test_hvp_with_grad_takes_a_one_element_tuple_of_primals(wrap):
    x, v = np.array([1.0, 2.0]), np.array([1.0, -1.0])
    grad = lambda z: 3 * z**2  # noqa: E731 - the gradient of sum(z**3)
    plain = nd.hvp(lambda z: np.sum(z**3), wrap([x]), wrap([v]))
    out = nd.hvp(None, wrap([x]), wrap([v]), grad=grad, grad0=grad(x))
    assert isinstance(plain, tuple) and isinstance(out, tuple) and len(out) == 1
    np.testing.assert_allclose(out[0], 6 * x * v, rtol=1e-6)
    np.testing.assert_allclose(out[0], plain[0], rtol=1e-5)
    full = nd.hvp(None, wrap([x]), wrap([v]), grad=grad, full_output=True)
    assert isinstance(full, tuple) and isinstance(full[0], nd.DiffResult)
    with pytest.raises(TypeError, match=r"one array or a one-element tuple.*got 2 primals"):
        nd.hvp(None, (x, x), (v, v), grad=grad)
    assert not math.isnan(float(nd.hvp(None, x, v, grad=grad)[0]))
