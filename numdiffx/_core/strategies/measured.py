"""The default central Hessian: its diagonal measured before its mixed entries are stepped.

``auto``'s step assumes that f varies on the scale ``max(|x_i|, 1)``: that its fourth
derivative along x_i is about ``|f| / s**4``. A log-likelihood often curves much faster
(a logit's intercept of -13 has curvature on the scale of the linear predictor, not 13),
and a Hessian at a step sized for the prior carries that truncation into every entry:
standard errors of a Poisson regression 6e-6 off where statsmodels' ``approx_hess3`` gets
3e-6. With 2 n more evaluations the Hessian can see it:

1. the diagonal on the five points ``x, x +- h e_i, x +- 2 h e_i`` (``h``: ``auto``'s step
   for the three-point second difference). Their five-point second derivative
   ``[-1, 16, -30, 16, -1] / (12 h**2)`` is the Richardson extrapolation of the
   three-point ones at ``h`` and ``2 h``: order 4, round-off about the three-point's.
   Their fourth difference ``A = h**4 f''''`` measures the curvature's scale;
2. the mixed entries at the step that balances the three-point stencil's truncation
   ``h**2 |A| / (12 h**4)`` against its round-off ``4 eps |f| / h**2``:
   ``h*_i = h_i (48 eps |f| / |A_i|)**(1/4)``, kept within ``[h/16, 2 h]`` (the points
   verified the axis up to ``2 h``; a fourth difference below round-off lets the step
   grow, one far above it shrinks it), the smallest over f's outputs, then ``rho h*``
   (:func:`~numdiffx._core.plans.hessian.mixed_step_ratio`). Where f(x) is 0 (which
   says nothing about f's round-off) ``h`` itself.

Where f is not finite at ``x +- 2 h e_i`` but is at ``x +- h e_i`` (a domain edge between
them), the diagonal falls back to the three-point value at ``h`` with the one-pass rule's
estimate, and the mixed entries keep ``rho h``.

Every decision is array arithmetic: it runs under ``jax.jit`` as eagerly. Cost:
``2 n**2 + 2 n + 1`` evaluations (``approx_hess3``: ``2 n (n + 1)``), in two calls of a
batched f (the diagonal, then the mixed entries).

Error estimates (``full_output``), honest from the points: the diagonal's round-off
``2 * 64/12 eps |f| / h**2`` and truncation ``4 * |A| kappa**2 / 90`` (``kappa``, the
scale f'' changes on: ``sqrt(|f''''| / |f''|)``, at least ``1/s``, at most ``1/h``); where
the three-point values at ``h`` and ``2 h`` disagree by more than a tenth of the entry,
the points are inconsistent (a step across a domain edge, a kink) and the disagreement
is the estimate: never SUCCESS; nor where the curvature changes f by more than f itself
within one step while f is no quadratic (a feature narrower than the step). A mixed
entry's truncation is the larger of the smooth prior and its diagonals' measured
curvature, ``sqrt(|A_i| |A_j|)`` at its step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import device as _device

from ..plans.outcome import Outcome
from ..result import Status
from ..stencils import Stencil, central
from .diagnose import (
    ROUNDOFF_SAFETY,
    TRUNCATION_SAFETY,
    diagnostic_weights,
    one_step_estimate,
    verdict,
)

__all__ = ["applies", "measured_hessian"]

#: the three-point values at h and 2 h may differ by this fraction of the entry
CONSISTENT = 0.1
#: the mixed entries' step stays within [LOW h, HIGH h]
LOW, HIGH = 1.0 / 16.0, 2.0

_THREE = central(order=2).with_deriv(2)
_FIVE = central(order=4).with_deriv(2)


def applies(plan: Any) -> bool:
    """Whether ``plan`` is a Hessian of the default central stencil (order 2, real)."""
    m = plan.method
    return (plan.name == "hessian" and not getattr(plan, "complex_step", False)
            and isinstance(m, Stencil) and m.family == "central" and m.order == 2
            and m.deriv == 1 and plan.problem.n > 0)


def measured_hessian(plan: Any, h: Any, *, full_output: bool) -> Outcome:
    """The Hessian of ``plan`` from ``auto``'s diagonal steps ``h`` (module doc)."""
    p = plan.problem
    xp, n, eps = p.xp, p.n, p.eps
    (top,) = diagnostic_weights(_FIVE)[:1]
    diag_rows = np.arange(n)
    # on the points (-2, -1, 1, 2) h: the fourth difference, and the three-point second
    # and first differences at h (zero weights skip their points: finite where x +- h is)
    d = plan.evaluate(h, diag_rows, method=central(order=4),
                      extras=(top, (0.0, 1.0, 1.0, 0.0), (0.0, -0.5, 0.5, 0.0)))
    value_d, status_d, fourth = d.values, d.status, d.extras[0]
    f_abs = xp.abs(xp.reshape(p.f0, (1, -1)))
    h_col = xp.reshape(h, (n, 1))
    # x +- 2 h beyond f's domain (NaN) while x +- h is not: the three-point value at h,
    # judged as the one-pass rule judges it
    with np.errstate(all="ignore"):
        three = d.extras[1] / h_col**2
    fallback = ~xp.isfinite(value_d) & xp.isfinite(three)
    value_d = xp.where(fallback, three, value_d)
    status_d = xp.where(fallback, xp.asarray(int(Status.SUCCESS), dtype=status_d.dtype,
                                             device=p.device),
                        status_d)
    with np.errstate(all="ignore"):
        a = xp.abs(fourth)
        ratio = (_THREE.roundoff_constant / _THREE.truncation_constant * eps * f_abs / a
                 ) ** 0.25
        # f(x) == 0 says nothing about f's round-off (a likelihood shifted to 0 at its
        # maximum): auto's step stands there, as where nothing is finite
        ratio = xp.where(xp.isnan(ratio) | (f_abs == 0), xp.ones_like(ratio), ratio)
        ratio = xp.minimum(xp.maximum(ratio, LOW * xp.ones_like(ratio)),
                           HIGH * xp.ones_like(ratio))
        ratio = xp.min(ratio, axis=1)
        h_star = plan.to_steps(h * xp.astype(ratio, h.dtype))
    mixed_rows = np.arange(n, plan.n_entries)
    if mixed_rows.size:
        dm = plan.evaluate(h_star, mixed_rows)
        values = xp.concat([value_d, dm.values], axis=0)
        status = xp.concat([status_d, dm.status], axis=0)
    else:
        values, status = value_d, status_d
    error = None
    if full_output:
        error, status = _estimate(plan, h_col, h_star, values, status, a, f_abs,
                                  (fallback, d.extras[1], d.extras[2]))
    return Outcome(values, error, h_star, status)


def _estimate(plan: Any, h_col: Any, h_star: Any, values: Any, status: Any, a: Any,
              f_abs: Any, three: tuple[Any, Any, Any]) -> tuple[Any, Any]:
    """(error, status) per entry (module doc); ``three``: the diagonal rows that fell
    back to the three-point value at h, and its second and first differences."""
    p = plan.problem
    xp, n, eps = p.xp, p.n, p.eps
    scale = plan.output_scale(values)
    s = h_col / (_THREE.step_constant * eps ** 0.25)  # the scale auto sized h for
    with np.errstate(all="ignore"):
        # the diagonal: the five-point value at h
        v = xp.abs(values[:n, ...])
        round_d = ROUNDOFF_SAFETY * _FIVE.roundoff_constant * eps * f_abs / h_col**2
        # (h kappa)**2 = h**2 |f''''| / |f''| = |A| / (h**2 |value|), within [(h/s)**2, 1]
        hk2 = a / (h_col**2 * xp.where(v == 0, xp.zeros_like(v) + math.inf, v))
        hk2 = xp.where(v == 0, xp.ones_like(hk2), hk2)
        hk2 = xp.minimum(xp.maximum(hk2, (h_col / s) ** 2), xp.ones_like(hk2))
        trunc_d = TRUNCATION_SAFETY * _FIVE.truncation_constant * a * hk2 / h_col**2
        # the three-point values at h and 2 h differ by 3 |A| / (12 h**2): beyond a tenth
        # of the entry the points are inconsistent, and that is the error
        gap = a / (4.0 * h_col**2)
        off = ~(gap <= CONSISTENT * (v + scale[:n, ...]))
        trunc_d = xp.where(off, xp.maximum(trunc_d, gap), trunc_d)
        # the curvature changes f by more than f itself within one step, and f is no
        # quadratic there (its fourth difference stands above round-off): a feature
        # narrower than the step (numdifftools' 2-ion Hamiltonian, positions ~1e-6 at a
        # step of 3e-4: half the curvature, with consistent points) that five points
        # cannot bound. f(x) == 0 says nothing (x**2 + x**4 at 0 is fine).
        change = h_col**2 * v
        beyond = (change > f_abs) & (f_abs > 0) & (
            a > 4.0 * 16.0 * eps * (f_abs + 2.0 * change))
        trunc_d = xp.where(beyond, xp.maximum(trunc_d, v), trunc_d)
        trunc_d = xp.where(xp.isnan(trunc_d), gap, trunc_d)
        if plan.n_entries == n:
            trunc, roundoff = trunc_d, round_d
        else:
            dev = p.device
            first = xp.asarray(plan.pairs[:, 0], device=dev)
            second = xp.asarray(plan.pairs[:, 1], device=dev)
            hi = xp.take(h_star, first, axis=0)
            hj = xp.take(h_star, second, axis=0)
            h_e = xp.reshape(xp.sqrt(hi) * xp.sqrt(hj), (-1, 1))  # diagonal-equivalent
            s_e = h_e / (_THREE.step_constant * eps ** 0.25)
            vm = xp.abs(values[n:, ...])
            c_t = _THREE.truncation_constant
            prior = c_t * (vm * (h_e / s_e) ** 2 + f_abs * (h_e / s_e) ** 2 / s_e**2)
            # the diagonals' fourth derivatives, |A| / h**4, at the entry's step
            m4 = xp.sqrt(xp.take(a / h_col**4, first, axis=0)) * xp.sqrt(
                xp.take(a / h_col**4, second, axis=0))
            measured = c_t * h_e**2 * m4
            measured = xp.where(xp.isnan(measured), prior, measured)
            trunc_m = TRUNCATION_SAFETY * xp.maximum(prior, measured)
            round_m = ROUNDOFF_SAFETY * _THREE.roundoff_constant * eps * f_abs / h_e**2
            trunc = xp.concat([trunc_d, trunc_m], axis=0)
            roundoff = xp.concat([round_d, round_m], axis=0)
        # no estimate below the smallest normal float: 0.0 at a subnormal x (x**3 at
        # 1.2e-314 has H = 7.2e-314) is not exact
        error = trunc + roundoff  # real, in f's precision (complex f: its real dtype)
        tiny = float(xp.finfo(error.dtype).smallest_normal)
        error = xp.maximum(error, tiny * xp.ones_like(error))
    given = status[:n, ...]  # the evaluation's, before any verdict
    status = verdict(xp, _THREE, eps, values, status, trunc, roundoff, scale)
    bad = (status == int(Status.NON_FINITE)) | (status == int(Status.STEP_TOO_SMALL))
    error = xp.where(bad, xp.asarray(math.nan, dtype=error.dtype, device=_device(error)),
                     error)
    # the diagonal rows whose x +- 2 h left f's domain: the one-pass rule's estimate of
    # their three-point value (before the mixed entries inherit their diagonals' status)
    fallback, second, first_diff = three
    one_err, one_status = one_step_estimate(xp, _THREE, eps, h_col, values[:n, ...],
                                            given, f_abs, [second, first_diff],
                                            scale[:n, ...])
    error = xp.concat([xp.where(fallback, one_err, error[:n, ...]), error[n:, ...]], axis=0)
    status = xp.concat([xp.where(fallback, one_status, status[:n, ...]), status[n:, ...]],
                       axis=0)
    return plan.inherit(error, status)
