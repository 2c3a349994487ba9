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

SUCCESS means the estimate is within ``100 eps**max(p/(p+q), 1/2)`` (what the stencil
promises at its optimal step, with margin, capped at ``100 sqrt(eps)``; :func:`tolerance`)
times the derivative's scale: its own size, the largest
entry sharing its output (so the structural zeros of a Jacobian row are judged against
the row), and how much it varies over ``s`` (``|A| s**(d-q)``: a smooth extremum).
Otherwise the status names the dominating term: NONSMOOTH (truncation: the points are
inconsistent with a smooth f at this step) or ROUNDOFF (cancellation: ``f(x) = 1e20 + x``
gives 0 with an estimate of 1e10).

Three points cannot tell a smooth minimum of an f that is itself ~0 there (``x**2`` at
0, Rosenbrock's at (1, 1, 1)) from a kink (``|x|`` at 0); both are flagged NONSMOOTH here,
and :mod:`.stationary` tells them apart with the second difference at twice the step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import device as _device

from ..result import Status
from ..stencils import COMPLEX_HESSIAN_FLOOR, AbstractMethod, ComplexStep, Stencil, central

__all__ = ["complex_step_truncation", "diagnostic_weights", "estimate", "one_step_estimate",
           "tolerance", "verdict"]

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
             extras: list[Any], noise: float | None = None, *,
             rows: np.ndarray | None = None, scale: Any = None) -> tuple[Any, Any]:
    """(error, status) of a plan's one-step outcome (see :func:`one_step_estimate`);
    ``noise``: a relative noise level of f above the dtype's eps, which raises the
    round-off term (the tolerance stays the dtype's). ``rows`` (host): the values are
    those entries only (a block), judged against ``scale``, the plan's
    :meth:`output_scale` of all entries."""
    p = plan.problem
    xp = p.xp
    h_e = plan.estimate_steps(h)
    if rows is not None:
        h_e = xp.take(h_e, xp.asarray(rows, device=p.device), axis=0)
    if scale is None:
        scale = plan.output_scale(values)
    f_abs = xp.abs(plan.f0_entries())
    if noise is not None and noise > p.eps:
        f_abs = f_abs * (noise / p.eps)
    if getattr(plan, "complex_step", False) and isinstance(method, Stencil):
        # the scale f is believed to vary on: the step's, c s, but never below a tenth of
        # it, max(|x|, 1) where the step took the floor (COMPLEX_HESSIAN_FLOOR)
        c = central(order=2).step_constant * p.eps ** (1.0 / 3.0)
        h_r = h[1] if isinstance(h, tuple) else h
        s_var = xp.minimum(xp.maximum(xp.abs(plan.step_x()), xp.ones_like(h_r)),
                           xp.abs(h_r) / (c * COMPLEX_HESSIAN_FLOOR))
        s_var = xp.maximum(s_var, xp.abs(h_r) / c)
        s_e = plan.estimate_steps((s_var, s_var))
        if rows is not None:  # a block of entries: their own scales
            s_e = xp.take(s_e, xp.asarray(rows, device=p.device), axis=0)
        return plan.inherit(*_complex_hessian(xp, method, p.eps, h_e, values, status, f_abs,
                                              extras, scale, s_e))
    error, status = one_step_estimate(xp, method, p.eps, h_e, values, status, f_abs, extras,
                                      scale)
    return plan.inherit(error, status)


def _complex_hessian(xp: Any, method: Stencil, eps: float, h: Any, value: Any, status: Any,
                     f_abs: Any, extras: list[Any], scale: Any, s: Any = None
                     ) -> tuple[Any, Any]:
    """(error, status) of complex-step Hessian entries at the (real-direction) step ``h``
    (``s``: the scale f varies on per entry; None: the step's, ``h / c``).

    Truncation: the central Hessian's prior at the scale the step implies; round-off: the
    imaginary parts carry no cancellation, ``eps (|H| + |f| / (s h))`` (``|f| / s`` for
    the gradient in them). ``extras`` (diagonal rows): the real second difference at the
    same step with its diagnostics. Where those say the step is too large for f
    (NONSMOOTH), or the complex value lies further from the real one than the real one's
    own estimate explains, the entry is NONSMOOTH with that distance as its error: the
    complex points alone cannot see a step beyond f's scale."""
    q = method.deriv
    c = central(order=2).step_constant * eps ** (1.0 / 3.0)  # h = c s: central's step
    with np.errstate(all="ignore"):
        s = h / c if s is None else s
        trunc = TRUNCATION_SAFETY * method.truncation_constant * (h / s) ** 2 * (
            xp.abs(value) + f_abs / s**q)
        # the imaginary parts are about h |f'|: |f'| from the real diagonal's slope where
        # it was evaluated, else the prior |f| / s (a likelihood's slope is ~0 at its MLE)
        slope = f_abs / s
        if len(extras) >= 2:
            measured = xp.abs(extras[1]) / h
            slope = xp.where(xp.isfinite(measured), measured, slope)
        roundoff = ROUNDOFF_SAFETY * eps * (xp.abs(value) + slope / h)
        if len(extras) >= 2:
            # the real second difference at the same step is off by its truncation,
            # |H| (h/s)**2 / 12 for f varying on a scale s; the complex diagonal's h**2
            # term cancels (Im[(1+i)**4 - (i-1)**4] = 0), leaving |H| (h/s)**4 / 90: so
            # a gap between them beyond the real one's round-off, T, implies a complex
            # truncation of 1.6 T**2 / |H| (OLS on Longley: an intercept of -3.5e6
            # stepped by 30 on a collinear design, 4e-4 off, had an estimate of 1e-11)
            real_round = ROUNDOFF_SAFETY * method.roundoff_constant * eps * f_abs / h**q
            t_re = xp.abs(value - extras[-1]) - real_round
            implied = TRUNCATION_SAFETY * 1.6 * t_re**2 / xp.abs(value)
            take = xp.isfinite(implied) & (t_re > 0)
            trunc = xp.where(take, xp.maximum(trunc, implied), trunc)
        error = trunc + roundoff
    # what it promises: a central first derivative's accuracy (the real direction's
    # truncation, O(h**2) at h ~ eps**(1/3)), not the complex step's eps
    status = verdict(xp, central(order=2), eps, value, status, trunc, roundoff, scale)
    if len(extras) < 2:
        return error, status
    *diagnostics, real = extras
    err_re, st_re = one_step_estimate(xp, method, eps, h, real, xp.zeros_like(status), f_abs,
                                      diagnostics, scale)
    with np.errstate(all="ignore"):
        gap = xp.abs(value - real)
        tol = tolerance(eps, method) * (xp.abs(value) + scale)
        # the real points' NONSMOOTH counts where the complex value lies beyond their
        # round-off: at a small step (a parameter far below 1) the real second
        # difference of f ~ 6e4 is noise that reads as a kink, and the complex value
        # does not carry it (Poisson on RAND HIE: 53 entries accurate to 1e-6 failed)
        real_round = ROUNDOFF_SAFETY * method.roundoff_constant * eps * f_abs / h**method.deriv
        off = xp.isfinite(real) & (((st_re == int(Status.NONSMOOTH))
                                    & (gap > 10 * real_round + tol))
                                   | (gap > 10 * err_re + tol))
        error = xp.where(off, xp.maximum(xp.maximum(error, gap), err_re), error)
    nonsmooth = xp.asarray(int(Status.NONSMOOTH), dtype=xp.int8, device=_device(status))
    return error, xp.where(off & (status == int(Status.SUCCESS)), nonsmooth, status)


def complex_step_truncation(plan: Any, method: AbstractMethod, h: Any, value: Any,
                            error: Any, status: Any) -> tuple[Any, Any]:
    """(error, status) of complex-step first derivatives with their truncation measured.

    The prior (``eps |value|``) assumes f varies on the scale of ``x``; a badly scaled
    f (a gamma GLM's likelihood, Hessian entries of 1e15, stepped by 1.5e-8) has a
    truncation ``|f3| h**2 / 6`` (f3 the third derivative) far beyond it: scores of
    -7.9e5 for -1.2e-4, every entry SUCCESS. The same stencil at twice the step
    measures it, ``T = |B(2h) - B(h)| / 3``, and the estimate takes ``4 T``. SUCCESS
    needs ``4 T`` within what the complex-step Hessian promises too, a central first
    derivative's ``100 eps**(2/3)`` (a fixed step of 1e-5 is 1e-11 off: no failure),
    of the derivative's scale: its size, the largest entry sharing its output whose own
    ``4 T`` is below a thousandth of it (a wrong entry's size is no scale), and
    ``|f| / s``, the slope of an f varying on the scale ``s = h / sqrt(eps)`` the step
    was sized for (at a stationary point the two values differ by their round-off
    only, relative to nothing)."""
    if not isinstance(method, ComplexStep) or plan.deriv != 1 or plan.name not in (
            "columns", "elementwise", "directional"):
        return error, status
    p = plan.problem
    xp, eps = p.xp, p.eps
    if p.backend.is_traced(value):
        return error, status
    d2 = plan.evaluate(2 * h)
    step = xp.abs(plan.estimate_steps(h))
    f_abs = xp.abs(plan.f_scale())
    with np.errstate(all="ignore"):
        trunc = TRUNCATION_SAFETY * xp.abs(d2.values - value) / 3
        measured = xp.isfinite(trunc) & (d2.status == int(Status.SUCCESS))
        trunc = xp.where(measured, trunc, xp.zeros_like(trunc))
        error = error + trunc
        trusted = trunc <= 1e-3 * xp.abs(value)
        scale = plan.output_scale(xp.where(trusted, value, xp.zeros_like(value)))
        tol = tolerance(eps, central(order=2)) * (xp.abs(value) + scale
                                                  + f_abs * eps**0.5 / step)
        fails = (status == int(Status.SUCCESS)) & (trunc > tol)
    nonsmooth = xp.asarray(int(Status.NONSMOOTH), dtype=status.dtype, device=_device(status))
    return error, xp.where(fails, nonsmooth, status)


def tolerance(eps: float, method: AbstractMethod) -> float:
    """Relative tolerance of SUCCESS: what the stencil promises at its optimal step,
    ``100 eps**(p/(p+q))``, but never looser than ``100 sqrt(eps)`` (what a forward
    difference promises for a first derivative), nor than ``LOOSEST`` (16-bit floats).

    The cap matters where the derivative order exceeds the stencil's order: an order-2
    stencil for a 6th derivative "promises" ``100 eps**(1/4) = 1.2e-2``, which let
    answers 1e-3 off be called SUCCESS (the 6th derivative of cos, the forward Hessian of
    ``2 x**3`` at 0). SUCCESS now always means at least 1.5e-6 relative in float64."""
    if isinstance(method, ComplexStep):
        return PROMISE * eps
    p, q = method.order, method.deriv
    return min(LOOSEST, PROMISE * eps ** max(p / (p + q), 0.5))


def one_step_estimate(xp: Any, method: AbstractMethod, eps: float, h: Any, value: Any,
                      status: Any, f_abs: Any, extras: list[Any], scale: Any,
                      known: tuple[Any, Any, Any] | None = None) -> tuple[Any, Any]:
    """(error, status) for the (E, M) ``value`` at steps ``h`` (E, 1); ``scale`` is the
    magnitude absolute errors are judged against (the largest entry sharing the output).
    ``known = (mask, truncation, round-off)``: terms a rule measured itself (a pilot),
    used where ``mask`` holds, safety factors included."""
    p, q = method.order, method.deriv
    h = xp.abs(h)
    # 0-d constants broadcast by ``where``: no full-size ones/zeros (the same bits)
    safe_h = xp.where(h == 0, _const(xp, 1.0, h), h)
    with np.errstate(all="ignore"):  # one context for the whole estimate (verdict too)
        mag = xp.abs(value)  # |value|, taken once
        if isinstance(method, ComplexStep):
            s = safe_h / eps**0.5  # the complex step is sqrt(eps) * scale
            roundoff = 4 * eps * mag
            trunc = method.truncation_constant * safe_h ** 2 * mag / s ** 2
            spread = xp.zeros_like(value)
        else:
            s = safe_h / (method.step_constant * eps ** (1.0 / (p + q)))
            roundoff = method.roundoff_constant * eps * f_abs / safe_h ** q
            assert isinstance(method, Stencil)
            trunc, spread = _truncation(xp, method, safe_h, s, value, f_abs, extras, mag)
        trunc, roundoff = TRUNCATION_SAFETY * trunc, ROUNDOFF_SAFETY * roundoff
        if known is not None:
            mask, k_trunc, k_round = known
            trunc = xp.where(mask, k_trunc, trunc)
            roundoff = xp.where(mask, k_round, roundoff)
            spread = xp.where(mask, xp.zeros_like(spread), spread)
        error = trunc + roundoff
        # the spread widens the tolerance of a value near a zero of the derivative, never
        # beyond the magnitude of the result: an estimate larger than the value is no
        # SUCCESS
        spread = xp.minimum(spread, mag + scale)
        status = _verdict(xp, method, eps, mag, status, trunc, roundoff, scale + spread,
                          error)
    bad = (status == int(Status.NON_FINITE)) | (status == int(Status.STEP_TOO_SMALL))
    error = xp.where(bad, _const(xp, math.nan, error), error)
    return error, status


def _const(xp: Any, c: float, like: Any) -> Any:
    """The 0-d array ``c`` of ``like``'s dtype on its device (``where`` broadcasts it)."""
    return xp.asarray(c, dtype=like.dtype, device=_device(like))


def verdict(xp: Any, method: AbstractMethod, eps: float, value: Any, status: Any, trunc: Any,
            roundoff: Any, scale: Any) -> Any:
    """The status of one-step values from their error terms: SUCCESS stays SUCCESS where
    ``trunc + roundoff <= tolerance * (|value| + scale)``; elsewhere the larger term names
    it, NONSMOOTH (truncation) or ROUNDOFF."""
    with np.errstate(all="ignore"):
        return _verdict(xp, method, eps, xp.abs(value), status, trunc, roundoff, scale)


def _verdict(xp: Any, method: AbstractMethod, eps: float, mag: Any, status: Any, trunc: Any,
             roundoff: Any, scale: Any, total: Any = None) -> Any:
    """:func:`verdict` of ``mag = |value|``, inside the caller's ``np.errstate``;
    ``total``: ``trunc + roundoff`` where the caller has it."""
    tol = tolerance(eps, method) * (mag + scale)
    total = trunc + roundoff if total is None else total
    fails = (status == int(Status.SUCCESS)) & ~(total <= tol)
    code, dev = xp.int8, _device(status)
    return xp.where(fails & (roundoff >= trunc),
                    xp.asarray(int(Status.ROUNDOFF), dtype=code, device=dev),
                    xp.where(fails, xp.asarray(int(Status.NONSMOOTH), dtype=code, device=dev),
                             status))


def _truncation(xp: Any, method: Stencil, h: Any, s: Any, value: Any, f_abs: Any,
                extras: list[Any], mag: Any) -> tuple[Any, Any]:
    """(truncation estimate, how much the derivative varies over the scale it is resolved
    on) per element, from the stencil's points (module doc). Written in ``h/s`` and
    ``h kappa`` so that x = 1e300 neither overflows nor underflows. ``mag``: ``|value|``."""
    p, q = method.order, method.deriv
    c_t = method.truncation_constant
    # |f^(p+q)| ~ |f^(q)| / s**p at the very least: truncation c_t |value| (h/s)**p
    floor = c_t * mag * (h / s) ** p
    prior = floor + c_t * f_abs * (h / s) ** p / s ** q
    if not extras:  # nothing beyond the value: the smooth prior at scale s
        return prior, xp.zeros_like(value)
    trunc, spread = _from_points(xp, method, h, s, value, f_abs, extras, floor)
    # entries without diagnostics (a Hessian's mixed entries: NaN) keep the prior
    has = xp.isfinite(extras[0])
    return xp.where(has, trunc, prior), xp.where(has, spread, _const(xp, 0.0, spread))


def _from_points(xp: Any, method: Stencil, h: Any, s: Any, value: Any, f_abs: Any,
                 extras: list[Any], floor: Any) -> tuple[Any, Any]:
    """(truncation, spread) from the stencil's own second and first differences."""
    p, q = method.order, method.deriv
    c_t = method.truncation_constant
    d = method.diagnostics[0]
    k = max(p + q - d, 0)
    top_h = xp.abs(extras[0]) / h ** q  # |A| h**(d-q): the d-th derivative, in q-th units
    below_h = xp.abs(extras[1]) / h ** q if len(extras) > 1 else f_abs / h ** q  # |B| h**(d-1-q)
    # h kappa: the relative change of the slope over one step, |A| h / |B|
    h_ratio = top_h / xp.where(below_h == 0, _const(xp, 1.0, below_h), below_h)
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
    unresolved = xp.where(smooth, h_over_s, _const(xp, 1.0, top_h))  # (E, M): smooth's
    if d == q:  # the value is the top difference (a Hessian's diagonal, [1, -2, 1]): at an
        # extremum of f (a likelihood at its maximum) the slope is ~0 and cannot resolve
        # the curvature. Two scales can: the asymmetry of the points, |B| / (h |A|), which
        # is h |f3| / (6 |f2|) there, and the length over which the curvature changes f by
        # about f itself, (|f| / |A|)**(1/q). A step beyond either (a variance stepped
        # below zero, where the likelihood returns 0.0) is a feature at the step's scale.
        with np.errstate(all="ignore"):
            asym = 6.0 * below_h / xp.where(top_h == 0, xp.ones_like(top_h), top_h)
            reach = h * (top_h / f_abs) ** (1.0 / q)
        # f(x) = 0 (a log-likelihood shifted to 0 at its maximum) says nothing about the
        # reach: the smooth prior's h / s there, not a feature at the step's scale
        reach = xp.where(xp.isfinite(reach), reach, h_over_s + xp.zeros_like(reach))
        measured = xp.maximum(asym, reach)
        unresolved = xp.where(smooth, unresolved, xp.minimum(xp.maximum(measured, h_over_s),
                                                             xp.ones_like(top_h)))
        # a resolved slope says how fast f' changes, not f'': its truncation scale is the
        # curvature's reach (an AR coefficient whose score is -0.47 at statsmodels' MLE)
        # (where the points are not smooth on the prior's scale: on a smooth f the reach
        # depends on f's arbitrary offset, and a quadratic at f = -7 is no feature)
        h_ratio = xp.where(smooth, h_ratio, xp.minimum(reach, xp.ones_like(reach)))
    hk = xp.where(resolved, xp.maximum(h_ratio, h_over_s), unresolved)
    # (x**1 is x: a power of 1, the central stencils', costs no pass)
    trunc = xp.maximum(c_t * top_h * (hk if k == 1 else hk ** k), floor)
    if d > q:  # a kink, a jump, noise: the one-sided disagreement h**(d-q) |A| / 2
        trunc = xp.where(resolved | smooth, trunc, xp.maximum(trunc, top_h / 2))
    # how much the derivative varies over the scale it is resolved on (1/kappa): the
    # absolute scale of a value at a smooth extremum of the slope
    if d > q:
        spread = top_h / (hk if d - q == 1 else hk ** (d - q))
    else:
        spread = xp.zeros_like(value)
    return trunc, spread
