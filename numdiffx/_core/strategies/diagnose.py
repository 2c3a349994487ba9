"""Error estimates of one-step rules from the points they evaluated anyway.

f(x) and the stencil's points determine more than the stencil's value: on the point set
``P = offsets + {0}`` they give the ``d``-th derivative ``A`` (``d = |P| - 1``; the
second difference for central differences) and the ``(d-1)``-th ``B`` (the slope). With
``s`` the scale the step was sized for (``h = c eps**(1/(p+q)) s``):

- truncation ``T = C_t h**p |f^(p+q)|``, with ``|f^(p+q)| ~ |A| kappa**(p+q-d)``:
  ``kappa = max(|A|/|B|, 1/s)`` where the slope is resolved at this step
  (``h |A| <= |B|``: f changes its slope by less than itself over one step). Where it is
  not (``h |A| > |B|``: an extremum of the slope, a kink, a jump or noise), ``A`` is
  compared with what a smooth f varying on the scale ``s`` allows
  (``|A| s <= 10 (|B| + |f| / s**(d-1))``): a smooth extremum keeps ``kappa = 1/s``; more
  curvature than that means a feature at the scale of the step itself, ``kappa = 1/h``;
- round-off ``R = C_r eps |f| / h**q``;
- the estimate is ``4 T + 2 R``. Where the slope is neither resolved nor smooth, the
  value can be off by the stencil's one-sided disagreement ``h**(d-q) |A| / 2``.

Stencils whose points determine nothing beyond their value (several directions: mixed
Hessian entries, hvp) use the prior ``|f^(p+q)| ~ (|value| s**q + |f|) / s**(p+q)``.

SUCCESS means the estimate is within ``100 eps**(p/(p+q))`` (what the stencil promises
at its optimal step, with margin) times the derivative's scale: its own size, the largest
entry sharing its output (so the structural zeros of a Jacobian row are judged against
the row), and how much it varies over ``s`` (``|A| s**(d-q)``: a smooth extremum).
Otherwise the status names the dominating term: NONSMOOTH (truncation: the points are
inconsistent with a smooth f at this step) or ROUNDOFF (cancellation: ``f(x) = 1e20 + x``
gives 0 with an estimate of 1e10).

Known limit: three points cannot tell a smooth minimum of an f that is itself ~0 there
(``x**2`` at 0) from a kink (``|x|`` at 0); both are flagged NONSMOOTH, value kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..result import Status
from ..stencils import AbstractMethod, ComplexStep, Stencil

__all__ = ["diagnostic_weights", "estimate", "one_step_estimate", "tolerance", "verdict"]

#: safety factors on the truncation and round-off estimates
TRUNCATION_SAFETY = 4.0
ROUNDOFF_SAFETY = 2.0
#: how much more curvature than the scale s allows still counts as smooth
SMOOTH_PRIOR = 10.0
#: SUCCESS: estimate within PROMISE * eps**(p/(p+q)) relative
PROMISE = 100.0
#: ... and never looser than this (it bites only in 16-bit floats, whose promise with
#: margin would exceed 100%): SUCCESS always means about 1.3 correct digits or better
LOOSEST = 0.05


def diagnostic_weights(method: AbstractMethod) -> tuple[tuple[float, ...], ...]:
    """Extra linear functionals the evaluation should return for ``method`` (top and
    below derivatives), or () where the points say nothing beyond the value."""
    if not isinstance(method, Stencil):
        return ()
    _, top, below = method.diagnostics
    return (top,) if below is None else (top, below)


def estimate(plan: Any, method: AbstractMethod, h: Any, values: Any, status: Any,
             extras: list[Any]) -> tuple[Any, Any]:
    """(error, status) of a plan's one-step outcome (see :func:`one_step_estimate`)."""
    p = plan.problem
    xp = p.xp
    h_e = plan.estimate_steps(h)
    return one_step_estimate(xp, method, p.eps, h_e, values, status,
                             xp.abs(plan.f0_entries()), extras, plan.output_scale(values))


def tolerance(eps: float, method: AbstractMethod) -> float:
    """Relative tolerance of a one-step rule: what the stencil promises, with margin."""
    p, q = method.order, method.deriv
    return min(LOOSEST, PROMISE * eps ** (p / (p + q)) if not isinstance(method, ComplexStep)
               else PROMISE * eps)


def one_step_estimate(xp: Any, method: AbstractMethod, eps: float, h: Any, value: Any,
                      status: Any, f_abs: Any, extras: list[Any], scale: Any) -> tuple[Any, Any]:
    """(error, status) for the (E, M) ``value`` at steps ``h`` (E, 1); ``scale`` is the
    magnitude absolute errors are judged against (the largest entry sharing the output)."""
    p, q = method.order, method.deriv
    h = xp.abs(h)
    safe_h = xp.where(h == 0, xp.ones_like(h), h)
    with np.errstate(all="ignore"):
        if isinstance(method, ComplexStep):
            s = safe_h / eps  # the complex step is eps * scale
            roundoff = 4 * eps * xp.abs(value)
            trunc = method.truncation_constant * safe_h ** 2 * xp.abs(value) / s ** 2
            spread = xp.zeros_like(value)
        else:
            s = safe_h / (method.step_constant * eps ** (1.0 / (p + q)))
            roundoff = method.roundoff_constant * eps * f_abs / safe_h ** q
            assert isinstance(method, Stencil)
            trunc, spread = _truncation(xp, method, safe_h, s, value, f_abs, extras)
        trunc, roundoff = TRUNCATION_SAFETY * trunc, ROUNDOFF_SAFETY * roundoff
        error = trunc + roundoff
    status = verdict(xp, method, eps, value, status, trunc, roundoff, scale + spread)
    bad = (status == int(Status.NON_FINITE)) | (status == int(Status.STEP_TOO_SMALL))
    error = xp.where(bad, xp.asarray(math.nan, dtype=error.dtype), error)
    return error, status


def verdict(xp: Any, method: AbstractMethod, eps: float, value: Any, status: Any, trunc: Any,
            roundoff: Any, scale: Any) -> Any:
    """The status of one-step values from their error terms: SUCCESS stays SUCCESS where
    ``trunc + roundoff <= tolerance * (|value| + scale)``; elsewhere the larger term names
    it, NONSMOOTH (truncation) or ROUNDOFF."""
    with np.errstate(all="ignore"):
        tol = tolerance(eps, method) * (xp.abs(value) + scale)
        fails = (status == int(Status.SUCCESS)) & ~(trunc + roundoff <= tol)
    code = xp.int8
    return xp.where(fails & (roundoff >= trunc), xp.asarray(int(Status.ROUNDOFF), dtype=code),
                    xp.where(fails, xp.asarray(int(Status.NONSMOOTH), dtype=code), status))


def _truncation(xp: Any, method: Stencil, h: Any, s: Any, value: Any, f_abs: Any,
                extras: list[Any]) -> tuple[Any, Any]:
    """(truncation estimate, how much the derivative varies over the scale it is resolved
    on) per element, from the stencil's points (module doc). Written in ``h/s`` and
    ``h kappa`` so that x = 1e300 neither overflows nor underflows."""
    p, q = method.order, method.deriv
    c_t = method.truncation_constant
    # |f^(p+q)| ~ |f^(q)| / s**p at the very least: truncation c_t |value| (h/s)**p
    floor = c_t * xp.abs(value) * (h / s) ** p
    if not extras:  # nothing beyond the value: the smooth prior at scale s
        return floor + c_t * f_abs * (h / s) ** p / s ** q, xp.zeros_like(value)
    d = method.diagnostics[0]
    k = max(p + q - d, 0)
    top_h = xp.abs(extras[0]) / h ** q  # |A| h**(d-q): the d-th derivative, in q-th units
    below_h = xp.abs(extras[1]) / h ** q if len(extras) > 1 else f_abs / h ** q  # |B| h**(d-1-q)
    # h kappa: the relative change of the slope over one step, |A| h / |B|
    h_ratio = top_h / xp.where(below_h == 0, xp.ones_like(below_h), below_h)
    resolved = (top_h <= below_h) | (top_h == 0)
    h_over_s = h / s
    if d == 1:  # forward/backward first differences: the points give the value only, and
        # f(x) = 0 at a root is no sign of a kink; kappa from |f'| / |f| where resolved
        hk = xp.where(resolved, xp.maximum(h_ratio, h_over_s), h_over_s)
        prior = c_t * f_abs * h_over_s ** p / s ** q
        return xp.maximum(c_t * top_h * hk ** k, floor + prior), xp.zeros_like(value)
    # smooth: |A| s <= K (|B| + |f| / s**(d-1)), in q-th derivative units
    smooth = top_h <= SMOOTH_PRIOR * (below_h * h_over_s + f_abs * h_over_s ** d / h ** q)
    # resolved: the measured curvature scale; an extremum of the slope that a smooth f
    # on the scale s explains: 1/s; otherwise a feature on the scale of the step itself
    hk = xp.where(resolved, xp.maximum(h_ratio, h_over_s),
                  xp.where(smooth, h_over_s + xp.zeros_like(top_h), xp.ones_like(top_h)))
    trunc = xp.maximum(c_t * top_h * hk ** k, floor)
    if d > q:  # a kink, a jump, noise: the one-sided disagreement h**(d-q) |A| / 2
        trunc = xp.where(resolved | smooth, trunc, xp.maximum(trunc, top_h / 2))
    # how much the derivative varies over the scale it is resolved on (1/kappa): the
    # absolute scale of a value at a smooth extremum of the slope
    spread = top_h / hk ** (d - q) if d > q else xp.zeros_like(value)
    return trunc, spread
