"""First derivatives where they vanish: the scale a derivative varies on.

SUCCESS judges an error against the derivative's scale: its own size and the largest
entry sharing its output. At a stationary point (the gradient at a minimum, a score at
its maximum-likelihood estimate) both are ~0, so no error, however small, was within
the tolerance (ROUNDOFF or NONSMOOTH, ``raise_for_status()`` raising on a gradient
accurate to 1e-16). The derivative's scale there is how much it varies: over the scale
``L`` it varies on, it changes by ``|f''| L``, with ``L`` the step rule's
``s = max(|x|, typical)``, or less where f'' itself changes sooner (``|f''| / |f'''|``,
``sqrt(|f''| / |f''''|)``). Where that curvature scale exceeds ``STATIONARY`` times
the derivative and its output's largest entry, the tolerance is ``100 sqrt(eps)`` of
``|f'| + (largest entry) + |f''| L`` -- but only where f visibly and smoothly curves,
which this module measures with one probe:

- the central second differences ``A(h)`` and ``A(2h)`` at the auto step ``h`` and
  twice it (the entries in question only, ``full_output`` only);
- *visible*: ``|f(x+h) + f(x-h) - 2 f(x)|`` is above ``VISIBLE`` times its own
  round-off (``1e20 + x`` and ``2 x**0`` give the same bits: neither curves visibly,
  and both keep today's ROUNDOFF, so no rule tells them apart);
- *smooth*: the two agree within ``CONSISTENT`` (a smooth f: ``A(2h) - A(h) =
  f'''' h**2 / 4``); a symmetric kink (``|x|`` at 0) halves it as the step doubles,
  noise changes it at random, and neither counts. A kink (``A(h)`` above ``KINK``
  times ``A(2h)``) is never SUCCESS, even where all the tableau's levels agree;
- the probe's own central value at ``h`` then has a *measured* truncation, the
  Richardson difference ``|B(2h) - B(h)| / 3``, and the estimate
  ``4 |B(2h) - B(h)| / 3 + 2 eps |f| / h``; it must be within the tolerance of the
  widened scale itself (noise that happens to give consistent curvature does not: its
  slope moves by ``noise / h``, far beyond ``sqrt(eps) |A| s``).

Where f does not visibly curve (a constant, ``1e20 + x``, ``x**3`` at 0), or the
curvature grows as the step shrinks (``x**4`` at 0), every status stays as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from numdiffx.backends import to_host

from ..result import Status
from ..stencils import AbstractMethod, central
from .diagnose import LOOSEST, PROMISE, ROUNDOFF_SAFETY, TRUNCATION_SAFETY, tolerance

__all__ = ["Probe", "applies", "probe", "probe_steps", "promise", "rejudge_one_step",
           "rejudge_tableau"]

#: the probe's stencil: its points give the value and the second difference
PROBE = central(order=2)
#: the second difference must exceed its own round-off by this much to count as visible
VISIBLE = 10.0
#: a smooth f's second differences at h and 2h agree to within this (relative)
CONSISTENT = 0.1
#: ... and a second difference this many times larger at h than at 2h is a kink
KINK = 1.5
#: a derivative is at a stationary point where f'' times the scale f' varies on exceeds
#: it (and its output's largest entry) this many times
STATIONARY = 10.0

_PLANS = frozenset({"columns", "elementwise"})


def applies(plan: Any) -> bool:
    """Whether the probe can serve ``plan``: a first derivative along basis directions
    (derivative, gradient, jacobian) of a real f at real x, outside jit."""
    p = plan.problem
    xp = p.xp
    return (plan.name in _PLANS and plan.deriv == 1 and plan.extras_ok
            and xp.isdtype(p.x_flat.dtype, "real floating")
            and xp.isdtype(p.f0.dtype, "real floating")
            and not p.backend.is_traced(p.x_flat) and not p.backend.is_traced(p.f0))


@dataclass
class Probe:
    """What the probe measured for the entries ``rows`` (host), each (len(rows), M)."""

    rows: np.ndarray
    value: Any  # the central value at h
    error: Any  # its estimate: 4 |B(2h) - B(h)| / 3 + 2 eps |f| / h
    curvature: Any  # |f''| times the scale f' varies on, where f curves visibly and smoothly
    stationary: Any  # smooth, and the curvature scale above STATIONARY (|f'| + scale)
    passes: Any  # stationary, and the probe's own estimate within the tolerance
    kink: Any  # the second difference grows as the step shrinks: a kink at x
    disagreement: Any  # the one-sided disagreement |A(h)| h / 2 (a kink's error)


def probe(plan: Any, h: Any, rows: np.ndarray, scale: Any,
          first: tuple[Any, Any, Any] | None = None) -> Probe:
    """Probe the entries ``rows`` at the steps ``h`` (per step variable, the plan's step
    form) and twice them; ``scale`` (len(rows)|1, M): the largest entry sharing each
    output. ``first``: (values, second difference, status) of those rows at ``h``, when
    the caller has them (the default rule's own pass): only ``2 h`` is evaluated."""
    p = plan.problem
    xp, eps = p.xp, p.eps
    top = (PROBE.diagnostics[1],)
    h2 = plan.to_steps(2 * h)
    if first is None:
        d1 = plan.evaluate(h, rows, method=PROBE, extras=top)
        first = (d1.values, d1.extras[0], d1.status)
    b1, e1, st1 = first
    d2 = plan.evaluate(h2, rows, method=PROBE, extras=top)
    b2, e2 = d2.values, d2.extras[0]
    at = xp.asarray(rows, device=p.device)
    step1 = xp.abs(xp.take(plan.estimate_steps(h), at, axis=0))
    step2 = xp.abs(xp.take(plan.estimate_steps(h2), at, axis=0))
    f_abs = xp.abs(plan.f_scale())
    if f_abs.shape[0] != 1:
        f_abs = xp.take(f_abs, at, axis=0)
    with np.errstate(all="ignore"):
        # round-off of f(x+h) + f(x-h) - 2 f(x) (weights 1, 1, -2), with safety
        r1 = ROUNDOFF_SAFETY * 4 * eps * (f_abs + xp.abs(e1))
        r2 = ROUNDOFF_SAFETY * 4 * eps * (f_abs + xp.abs(e2))
        a1, a2 = xp.abs(e1) / step1**2, xp.abs(e2) / step2**2
        noise = r1 / step1**2 + r2 / step2**2
        ok = ((st1 == int(Status.SUCCESS)) & (d2.status == int(Status.SUCCESS))
              & xp.isfinite(a1) & xp.isfinite(a2) & (a1 > 0))
        visible = ok & (xp.abs(e1) > VISIBLE * r1) & (xp.abs(e2) > VISIBLE * r2)
        a_gap = xp.abs(e1 / step1**2 - e2 / step2**2)
        smooth = visible & (a_gap <= CONSISTENT * a1 + noise)
        kink = visible & (a1 > KINK * a2 + noise)
        # the scale f' varies on: the step rule's s = max(|x|, typical) (h = c eps**(1/3)
        # s), but no longer than f2 itself lasts: |f2| / |f3| and sqrt(|f2| / |f4|) (f2 to
        # f4 the second to fourth derivatives; f3, f4 from the changes of B and A beyond
        # their round-off)
        # (cbrt at 1e-4 varies on 1e-4, not on typical = 1)
        s = step1 / (PROBE.step_constant * eps ** (1.0 / 3.0))
        span = step2**2 - step1**2
        roundoff = PROBE.roundoff_constant * eps * f_abs / step1
        b_gap = xp.maximum(xp.abs(b2 - b1) - 2 * ROUNDOFF_SAFETY * roundoff,
                           xp.zeros_like(b1))
        f3 = 6 * b_gap / span
        f4 = 12 * xp.maximum(a_gap - noise, xp.zeros_like(a_gap)) / span
        big = xp.full_like(s, math.inf)
        reach3 = xp.where(f3 > 0, a1 / f3, big)
        reach4 = xp.where(f4 > 0, xp.sqrt(a1 / f4), big)
        reach = xp.minimum(s, xp.minimum(reach3, reach4))
        curvature = xp.where(smooth, a1 * reach, xp.zeros_like(a1))
        stationary = smooth & (curvature > STATIONARY * (xp.abs(b1) + scale))
        trunc = xp.abs(b2 - b1) / (span / step1**2)  # B(h) is off by that, Richardson
        error = TRUNCATION_SAFETY * trunc + ROUNDOFF_SAFETY * roundoff
        tol = promise(eps) * (xp.abs(b1) + scale + curvature)
        passes = stationary & (error <= tol)
        disagreement = xp.abs(e1) / (2 * step1)
    return Probe(rows, b1, error, curvature, stationary, passes, kink, disagreement)


def promise(eps: float) -> float:
    """Relative tolerance against ``|f'| + |f''| s``: the central difference's own
    (``100 eps**(2/3)``), but never tighter than ``100 sqrt(eps)`` (1.5e-6 in float64,
    the adaptive rule's): the one-step promise assumes the round-off ``eps |f| / h`` is
    about ``eps**(2/3) |f| / s``, of the derivative's size where f varies on the scale s;
    at a likelihood's maximum ``|f|`` (-4.3e4) can dwarf ``|f''| s**2`` (200), and the
    round-off alone is then a few times that promise."""
    return max(tolerance(eps, PROBE), min(LOOSEST, PROMISE * eps**0.5))


def _visible(plan: Any, rows: np.ndarray, e1: Any) -> Any:
    """(len(rows), M): the second difference ``e1`` of the entries ``rows`` is above
    ``VISIBLE`` times its round-off."""
    p = plan.problem
    xp = p.xp
    f_abs = xp.abs(plan.f_scale())
    if f_abs.shape[0] != 1:
        f_abs = xp.take(f_abs, xp.asarray(rows, device=p.device), axis=0)
    with np.errstate(all="ignore"):
        return xp.abs(e1) > VISIBLE * ROUNDOFF_SAFETY * 4 * p.eps * (f_abs + xp.abs(e1))


def _rows_of(xp: Any, mask: Any) -> np.ndarray:
    """Host entries (rows of an (E, M) mask) with any element set."""
    host = np.asarray(to_host(mask))
    return np.flatnonzero(host.reshape(host.shape[0], -1).any(axis=1))


def _spread(xp: Any, device: Any, n: int, rows: np.ndarray, a: Any, fill: Any) -> Any:
    """The (len(rows), M) ``a`` back in the (n, M) layout, ``fill`` (n, M) elsewhere."""
    pos = np.zeros(n, dtype=np.int64)
    pos[rows] = np.arange(rows.size)
    chosen = np.zeros(n, dtype=bool)
    chosen[rows] = True
    placed = xp.take(a, xp.asarray(pos, device=device), axis=0)
    return xp.where(xp.expand_dims(xp.asarray(chosen, device=device), 1), placed, fill)


def rejudge_one_step(plan: Any, method: AbstractMethod, h: Any, value: Any, error: Any,
                     status: Any, extras: list[Any]) -> tuple[Any, Any]:
    """A one-step rule's (error, status) after the probe: NONSMOOTH and ROUNDOFF entries of
    the central first difference at a stationary point (its own second difference, in
    ``extras``, visible and above ``STATIONARY`` times ``|value|`` and its output over the
    scale the step was sized for) are evaluated at twice the step; where f curves
    visibly and smoothly there too and the probe's estimate is within the tolerance of
    ``|f'| + |f''| s``, they become SUCCESS with that estimate. The value never changes."""
    if not (method == PROBE and extras and applies(plan)):
        return error, status
    p = plan.problem
    xp = p.xp
    failing = (status == int(Status.NONSMOOTH)) | (status == int(Status.ROUNDOFF))
    if not bool(xp.any(failing)):  # only failing entries are rejudged: nothing to do
        return error, status
    eps, dev = p.eps, p.device
    e1 = extras[0]
    scale = plan.output_scale(value)
    step = xp.abs(plan.estimate_steps(h))
    with np.errstate(all="ignore"):
        s = step / (PROBE.step_constant * eps ** (1.0 / 3.0))
        cand = (xp.isfinite(value) & _visible(plan, np.arange(value.shape[0]), e1)
                & failing
                & (xp.abs(e1) / step**2 * s > STATIONARY * (xp.abs(value) + scale)))
    if not bool(xp.any(cand)):
        return error, status
    rows = _rows_of(xp, cand)
    at = xp.asarray(rows, device=dev)
    if scale.shape[0] != 1:
        scale = xp.take(scale, at, axis=0)
    ok_status = xp.zeros_like(xp.take(status, at, axis=0))  # (evaluated, finite: cand)
    pr = probe(plan, h, rows, scale,
               first=(xp.take(value, at, axis=0), xp.take(e1, at, axis=0), ok_status))
    n = value.shape[0]
    passes = cand & _spread(xp, dev, n, rows, pr.passes, xp.zeros_like(cand))
    error = xp.where(passes, _spread(xp, dev, n, rows, pr.error, error), error)
    status = xp.where(passes, xp.asarray(int(Status.SUCCESS), dtype=status.dtype, device=dev),
                      status)
    return error, status


def rejudge_tableau(plan: Any, h: Any, value: Any, error: Any, status: Any,
                    atol: float, rtol: float) -> tuple[Any, Any]:
    """The adaptive rule's (error, status) after the probe at the auto steps ``h``.

    Entries whose estimate is not within ``atol + rtol (|value| + scale)`` (SUCCESS only
    through the smallest-normal floor of an estimate of 0, or failing): where f curves
    visibly and smoothly and the probe agrees with the tableau's value, the tolerance
    takes ``|f''| s`` too; where the probe sees a kink at x, no SUCCESS (NONSMOOTH, the
    one-sided disagreement as the error: ``|x|`` at 0 is 0 at every level)."""
    if not applies(plan):
        return error, status
    xp = plan.problem.xp
    stops = ((status == int(Status.SUCCESS)) | (status == int(Status.ROUNDOFF))
             | (status == int(Status.ERROR_INCREASED))
             | (status == int(Status.MAX_ITERATIONS)))
    scale_all = plan.output_scale(value)
    with np.errstate(all="ignore"):
        mag = xp.abs(value)
        cand = xp.isfinite(value) & stops & ~(error <= atol + rtol * (mag + scale_all))
    if not bool(xp.any(cand)):
        return error, status
    rows = _rows_of(xp, cand)
    dev = plan.problem.device
    # first the auto step alone: where f does not curve visibly there (a constant output
    # of a Jacobian), nothing is to be learnt at twice it, and it is not evaluated
    d1 = plan.evaluate(h, rows, method=PROBE, extras=(PROBE.diagnostics[1],))
    seen = _visible(plan, rows, d1.extras[0]) & xp.take(cand, xp.asarray(rows, device=dev),
                                                        axis=0)
    keep = _rows_of(xp, seen)
    if keep.size == 0:
        return error, status
    sub = xp.asarray(keep, device=dev)
    rows = rows[keep]
    at = xp.asarray(rows, device=dev)
    scale = scale_all if scale_all.shape[0] == 1 else xp.take(scale_all, at, axis=0)
    pr = probe(plan, h, rows, scale, first=tuple(
        xp.take(a, sub, axis=0) for a in (d1.values, d1.extras[0], d1.status)))
    n = value.shape[0]
    falses = xp.zeros_like(cand)
    curvature = _spread(xp, dev, n, rows, pr.curvature, xp.zeros_like(error))
    passes = _spread(xp, dev, n, rows, pr.passes, falses)
    kink = _spread(xp, dev, n, rows, pr.kink, falses)
    probe_value = _spread(xp, dev, n, rows, pr.value, value)
    probe_error = _spread(xp, dev, n, rows, pr.error, error)
    disagreement = _spread(xp, dev, n, rows, pr.disagreement, error)
    with np.errstate(all="ignore"):
        agree = xp.abs(value - probe_value) <= 10 * (error + probe_error)
        ok = cand & passes & agree & (error <= atol + rtol * (mag + scale_all + curvature))
        kinked = cand & kink & ~ok & (status == int(Status.SUCCESS))
    code = status.dtype
    status = xp.where(ok, xp.asarray(int(Status.SUCCESS), dtype=code, device=dev),
                      xp.where(kinked, xp.asarray(int(Status.NONSMOOTH), dtype=code,
                                                  device=dev), status))
    error = xp.where(kinked, xp.maximum(error, disagreement), error)
    return error, status


def probe_steps(plan: Any, rule: Any) -> Any:
    """The auto steps ``c eps**(1/3) max(|x|, typical)`` of the adaptive ``rule``'s scale
    (its ``typical`` and ``scale_with_x``), made representable."""
    p = plan.problem
    c = PROBE.step_constant * p.eps ** (1.0 / 3.0)
    return plan.to_steps(c * rule.scale(plan.step_scale(), xp=p.xp))

