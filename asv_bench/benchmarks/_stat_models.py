"""Fitted statistical models whose Hessians are known exactly: the standard-error benchmark.

Used by ``bench_statistics.py`` (asv) and ``../compare/standard_errors_vs_statsmodels.py``
(the table in one run). Each model is fitted once with statsmodels on a dataset that
statsmodels ships; ``f`` is its log-likelihood at the parameter vector (statsmodels' own
``loglike``), ``x`` the maximum-likelihood estimate and ``hessian`` the exact Hessian of
``f`` at ``x``:

- analytic, from statsmodels (``model.hessian``): Logit and Probit (Spector), Poisson
  and negative binomial NB2 (RAND health insurance, 20 190 visits), GLM binomial (STAR98,
  21 parameters) and GLM gamma (Scotland); written out: OLS on Longley (coefficients
  from 0.04 to 3.5e6; the concentrated likelihood, whose Hessian is twice what
  ``OLS.hessian`` returns);
- by automatic differentiation (jax, float64) of the same likelihood written out
  exactly, checked against statsmodels' value at ``x`` to 1e-10: ARIMA(3,0,0) on the
  sunspots (statsmodels' Kalman filter with stationary initialisation) and AR(2) on
  unscaled log-differences of US real GDP (``sigma2 = 6.8e-5``: a step of 1e-4 makes
  the variance negative, where statsmodels' likelihood returns a finite value).
  These need jax; without it they are skipped.

Standard errors are ``sqrt(diag(inv(-H)))``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StatModel:
    name: str
    what: str
    f: Callable[[np.ndarray], float]
    x: np.ndarray
    hessian: np.ndarray  # exact, at x
    reference: str  # "analytic" or "jax"

    @property
    def standard_errors(self) -> np.ndarray:
        return standard_errors(self.hessian)


def standard_errors(h: Any) -> np.ndarray:
    """``sqrt(diag(inv(-H)))``; NaN where -H is not invertible or a variance is negative."""
    h = np.asarray(h, dtype=float)
    with np.errstate(all="ignore"):
        try:
            cov = np.linalg.inv(-h)
        except np.linalg.LinAlgError:
            return np.full(h.shape[0], np.nan)
        d = np.diag(cov)
        return np.where(d > 0, np.sqrt(np.abs(d)), np.nan)


def se_error(h: Any, model: StatModel) -> float:
    """Largest relative error of the standard errors from ``h`` (inf if any is NaN)."""
    se = standard_errors(h)
    ref = model.standard_errors
    if not np.all(np.isfinite(se)):
        return float("inf")
    return float(np.max(np.abs(se - ref) / ref))


def _quiet(fit: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit()


def _discrete(kind: str) -> StatModel:
    import statsmodels.api as sm

    if kind in ("logit", "probit"):
        d = sm.datasets.spector.load_pandas()
        x = sm.add_constant(d.exog.to_numpy(float), prepend=True)
        model = (sm.Logit if kind == "logit" else sm.Probit)(d.endog.to_numpy(float), x)
        what = f"{kind.capitalize()}, Spector (32 obs, 4 params)"
    else:
        d = sm.datasets.randhie.load_pandas()
        x = sm.add_constant(d.exog.to_numpy(float), prepend=False)
        y = d.endog.to_numpy(float)
        model = sm.Poisson(y, x) if kind == "poisson" else sm.NegativeBinomial(y, x)
        what = ("Poisson" if kind == "poisson" else "negative binomial NB2") + (
            f", RAND HIE ({len(y)} obs, {x.shape[1] + (kind == 'negbin')} params)")
    res = _quiet(lambda: model.fit(disp=0, maxiter=200))
    params = np.asarray(res.params, dtype=float)
    return StatModel(kind, what, model.loglike, params, np.asarray(model.hessian(params)),
                     "analytic")


def _glm(kind: str) -> StatModel:
    import statsmodels.api as sm

    if kind == "glm_binomial":
        d = sm.datasets.star98.load_pandas()
        model = sm.GLM(d.endog.to_numpy(float), sm.add_constant(d.exog.to_numpy(float),
                                                                prepend=False),
                       family=sm.families.Binomial())
        what = "GLM binomial, STAR98 (303 obs, 21 params)"
    else:
        d = sm.datasets.scotland.load_pandas()
        model = sm.GLM(d.endog.to_numpy(float), sm.add_constant(d.exog.to_numpy(float),
                                                                prepend=False),
                       family=sm.families.Gamma())
        what = "GLM gamma, Scotland (32 obs, 8 params)"
    res = _quiet(lambda: model.fit())
    params = np.asarray(res.params, dtype=float)
    scale = float(res.scale)
    h = np.asarray(model.hessian(params, scale=scale, observed=True))
    return StatModel(kind, what, lambda p: model.loglike(p, scale=scale), params, h,
                     "analytic")


def _ols() -> StatModel:
    import statsmodels.api as sm

    d = sm.datasets.longley.load_pandas()
    y, x = d.endog.to_numpy(float), sm.add_constant(d.exog.to_numpy(float))
    model = sm.OLS(y, x)
    params = np.asarray(model.fit().params, dtype=float)
    # statsmodels' OLS.hessian(params) is -X'X / (2 s2), half the Hessian of its own
    # concentrated loglike -n/2 log(SSR) + c; the exact one, at any beta:
    # -n X'X / SSR + 2 n (X'e)(X'e)' / SSR**2
    e = y - x @ params
    ssr, g, n = float(e @ e), x.T @ e, len(y)
    h = -n * (x.T @ x) / ssr + 2 * n * np.outer(g, g) / ssr**2
    return StatModel("ols_longley", "OLS, Longley (16 obs, 7 params from 0.04 to 3.5e6)",
                     model.loglike, params, h, "analytic")


def _ar(kind: str) -> StatModel:
    import statsmodels.api as sm
    from statsmodels.tsa.arima.model import ARIMA

    if kind == "arima_sunspots":
        y = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)
        p, what = 3, "ARIMA(3,0,0) + mean, sunspots (309 obs, Kalman filter)"
    else:
        gdp = sm.datasets.macrodata.load_pandas().data["realgdp"].to_numpy(float)
        y = np.diff(np.log(gdp))
        p, what = 2, "AR(2) + mean, log-diff. US real GDP (202 obs, sigma2 6.8e-5)"
    model = ARIMA(y, order=(p, 0, 0), trend="c")
    params = np.asarray(_quiet(lambda: model.fit()).params, dtype=float)

    def f(theta: np.ndarray) -> float:
        # complex points: statsmodels' complex-safe Kalman filter, as its own
        # approx_hess_cs call does (model.loglike(params, complex_step=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.loglike(theta, complex_step=bool(np.iscomplexobj(theta)))

    h = _ar_hessian(y, p, params, f(params))
    return StatModel(kind, what, f, params, h, "jax")


def _ar_hessian(y: np.ndarray, p: int, params: np.ndarray, value: float) -> np.ndarray:
    """Exact Hessian of the exact Gaussian AR(p) log-likelihood (mean, phi_1..phi_p,
    sigma2) by jax: the first p observations from the stationary distribution (the
    autocovariances solve the Yule-Walker system), the rest conditional on them."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    yj = jnp.asarray(y)
    n = y.shape[0]

    def loglike(theta: Any) -> Any:
        mu, phi, s2 = theta[0], theta[1:p + 1], theta[p + 1]
        z = yj - mu
        # gamma_k - sum_i phi_i gamma_|k-i| = s2 [k == 0], k = 0..p
        a = jnp.eye(p + 1)
        for k in range(p + 1):
            for i in range(1, p + 1):
                a = a.at[k, abs(k - i)].add(-phi[i - 1])
        gam = jnp.linalg.solve(a, jnp.zeros(p + 1).at[0].set(s2))
        cov = jnp.array([[gam[abs(i - j)] for j in range(p)] for i in range(p)])
        head = z[:p]
        _, logdet = jnp.linalg.slogdet(cov)
        ll0 = -0.5 * (p * jnp.log(2 * jnp.pi) + logdet + head @ jnp.linalg.solve(cov, head))
        pred = sum(phi[i - 1] * z[p - i:n - i] for i in range(1, p + 1))
        e = z[p:] - pred
        ll1 = -0.5 * ((n - p) * jnp.log(2 * jnp.pi * s2) + jnp.sum(e * e) / s2)
        return ll0 + ll1

    got = float(loglike(jnp.asarray(params)))
    if not abs(got - value) <= 1e-10 * abs(value):
        raise AssertionError(f"the exact AR({p}) likelihood {got!r} does not match "
                             f"statsmodels' {value!r}")
    return np.asarray(jax.hessian(loglike)(jnp.asarray(params)))


BUILDERS: dict[str, Callable[[], StatModel]] = {
    "logit": functools.partial(_discrete, "logit"),
    "probit": functools.partial(_discrete, "probit"),
    "poisson": functools.partial(_discrete, "poisson"),
    "negbin": functools.partial(_discrete, "negbin"),
    "glm_binomial": functools.partial(_glm, "glm_binomial"),
    "glm_gamma": functools.partial(_glm, "glm_gamma"),
    "ols_longley": _ols,
    "arima_sunspots": functools.partial(_ar, "arima_sunspots"),
    "ar2_gdp": functools.partial(_ar, "ar2_gdp"),
}


@functools.cache
def model(name: str) -> StatModel:
    """The fitted model ``name`` (cached); ImportError without statsmodels (or jax)."""
    return BUILDERS[name]()


def available(names: tuple[str, ...] = tuple(BUILDERS)) -> list[StatModel]:
    """The models that can be built here (statsmodels, and jax for the jax references)."""
    out = []
    for name in names:
        try:
            out.append(model(name))
        except ImportError:
            continue
    return out
