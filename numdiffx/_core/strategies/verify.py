"""The adaptive rule's check of a converged tableau against one small central step.

A tableau converged at large steps can be fooled by structure between its points (a
floor, the kinks of a ReLU network); a one-step difference at a small step sees the
derivative at x itself, with an error estimate from its own points. Where the two
disagree grossly, the small step's value replaces the tableau's.

Plans whose entries are independent (``blocked_tableau``: a dense Jacobian's columns)
are checked in blocks of entries, so that the check's temporaries are bounded by the
memory budget instead of the Jacobian's size; the scale every entry is judged against
(the largest value of its output) is taken over all blocks first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..plans.base import AbstractPlan
from ..stencils import AbstractMethod
from .diagnose import diagnostic_weights, estimate, tolerance

__all__ = ["verify"]


def verify(plan: Any, method: AbstractMethod, parts: list[tuple[Any, Any, Any, Any]],
           skip: np.ndarray | None, block: int | None = None
           ) -> list[tuple[Any, Any, Any, Any]]:
    # ``parts``: the tableau's (value, error, step, status), in blocks of ``block``
    # entries (one part: all at once); ``skip`` (host, per step variable): variables the
    # check must not move
    """One central pass at the auto step; where it disagrees with the tableau grossly
    (beyond ten times both estimates and sqrt(eps) of the derivative's scale), its value
    (and estimate, step, status) replaces the tableau's. Returns the parts, checked."""
    from .nominal import DEFAULT_AUTO

    p = plan.problem
    xp = p.xp
    h = DEFAULT_AUTO.steps(plan)
    if skip is not None and skip.any():  # those step variables do not move (step 0)
        h = xp.where(xp.asarray(skip, device=p.device), xp.zeros_like(h), h)
    h_e = plan.estimate_steps(h)
    traced = p.backend.is_traced(parts[0][2])
    n = plan.n_entries
    ranges = [(0, n)] if len(parts) == 1 else [
        (start, min(start + (block or n), n)) for start in range(0, n, block or n)]
    assert len(ranges) == len(parts)
    if not traced and not any(bool(xp.any(part[2] > 4 * xp.abs(h_e[a:b, ...])))
                              for part, (a, b) in zip(parts, ranges)):
        return parts  # converged at the auto step's scale already
    extras = diagnostic_weights(method) if plan.extras_ok else ()
    if len(parts) == 1:
        d = plan.evaluate(h, extras=extras)
        return [_check(plan, method, h, h_e, None, d, plan.output_scale(d.values),
                       *parts[0])]
    assert type(plan).output_scale is AbstractPlan.output_scale  # (the largest of a row)
    evaluated = []
    for a, b in ranges:
        rows = np.arange(a, b)
        evaluated.append((rows, plan.evaluate(h, rows, extras=extras)))
    scale = plan.blocks_output_scale([d.values for _, d in evaluated])
    checked = []
    for i, ((rows, d), (a, b)) in enumerate(zip(evaluated, ranges)):
        evaluated[i] = None  # type: ignore[call-overload]  # (its block is done with)
        checked.append(_check(plan, method, h, h_e[a:b, ...], rows, d, scale, *parts[i]))
        parts[i] = None  # type: ignore[call-overload]
    return checked


def _check(plan: Any, method: AbstractMethod, h: Any, h_e: Any, rows: np.ndarray | None,
           d: Any, scale: Any, value: Any, error: Any, step: Any, stop: Any
           ) -> tuple[Any, Any, Any, Any]:
    """The check of the entries ``rows`` (all when None), evaluated at ``h`` in ``d``."""
    from ..result import Status

    p = plan.problem
    xp = p.xp
    # gross disagreement only: beyond ten times both estimates AND what one step can
    # promise, at least sqrt(eps), of the derivative's scale (finer than that a one-step
    # difference cannot judge a tableau: a Hessian's one step is 1e-6 off)
    promise = max(p.eps ** 0.5, tolerance(p.eps, method))
    with np.errstate(all="ignore"):
        gap = xp.abs(value - d.values)
        if not (p.backend.is_traced(gap) or getattr(plan, "complex_step", False)) and not (
                _any_suspect(xp, gap, value, d.values, error, step, h_e, scale, promise)):
            return value, error, step, stop
    floor = promise * (xp.maximum(xp.abs(value), xp.abs(d.values)) + scale)
    with np.errstate(all="ignore"):
        # the check's own estimate (>= 0) only widens the margin: where no entry is apart
        # by ten times the tableau's estimate alone, none is apart at all, and the
        # estimate (a dozen passes over the entries) is not needed
        suspect = xp.isfinite(value) & (gap > 10 * error + floor) & (step > 4 * xp.abs(h_e))
    if not (p.backend.is_traced(suspect) or getattr(plan, "complex_step", False)
            or bool(xp.any(suspect))):
        return value, error, step, stop
    err_v, st_v = estimate(plan, method, h, d.values, d.status, d.extras, rows=rows,
                           scale=scale)
    with np.errstate(all="ignore"):
        # only a one-step value whose own points are consistent (within its tolerance,
        # or limited by round-off alone: 0 on a staircase) can overrule the tableau; not
        # one whose truncation is in doubt (the forward Hessian of 2 x**3 at 0: 12 h)
        valid = (st_v == int(Status.SUCCESS)) | (st_v == int(Status.ROUNDOFF))
        apart = gap > 10 * (error + err_v) + floor
        use = valid & suspect & apart
        # a complex-step Hessian's levels see f only along the imaginary axis: where
        # the check's real second difference says the auto step is already beyond f's
        # scale (NONSMOOTH) and the check lies beyond ten times the tableau's estimate,
        # the tableau may have converged on another function: not SUCCESS, the gap its
        # error (numdifftools' 2-ion Hamiltonian, positions 2.8e-6, steps from 0.06:
        # its Coulomb term has no imaginary part there, and the levels agreed on half
        # the curvature, SUCCESS with an estimate of 1e-24)
        doubt = (getattr(plan, "complex_step", False) & (st_v == int(Status.NONSMOOTH))
                 & xp.isfinite(d.values) & suspect & (stop == int(Status.SUCCESS)))
        stop = xp.where(doubt, xp.asarray(int(Status.NONSMOOTH), dtype=stop.dtype,
                                          device=p.device), stop)
        error = xp.where(doubt, xp.maximum(error, gap), error)
    if p.backend.is_traced(use) or bool(xp.any(use)):
        # and only a one-step value that stays put at twice its step: its own points
        # cannot see every truncation (central at a triple root, (x - 1)**3 at 1: h**2,
        # with an estimate of 1e-21, replaced the tableau's exact 0)
        h2 = tuple(2 * hi for hi in h) if isinstance(h, tuple) else 2 * h
        d2 = plan.evaluate(h2) if rows is None else plan.evaluate(h2, rows)
        with np.errstate(all="ignore"):
            use = use & (xp.abs(d2.values - d.values) < gap / 4)
    return (xp.where(use, d.values, value), xp.where(use, err_v, error),
            xp.where(use, xp.broadcast_to(xp.abs(h_e), value.shape), step),
            xp.where(use, st_v, stop))


def _any_suspect(xp: Any, gap: Any, value: Any, values: Any, error: Any, step: Any,
                 h_e: Any, scale: Any, promise: float) -> bool:
    """Whether any entry is suspect (:func:`_check`'s test), decided on the few elements
    that can be: a suspect element is apart by more than ten times the tableau's estimate
    (its floor is >= 0), so the full test (a dozen passes over the block) runs only on
    those, gathered, with the same elementwise arithmetic."""
    cand = xp.reshape(gap > 10 * error, (-1,))
    if not bool(xp.any(cand)):
        return False
    if value.ndim != 2 or h_e.ndim != 2 or getattr(scale, "ndim", 0) != 2:
        return True  # (the full test decides)
    m = value.shape[1]
    ii = xp.nonzero(cand)[0]
    rows, cols = ii // m, ii % m

    def at(a: Any) -> Any:
        """The gathered elements of ``a`` (E|1, M|1), as broadcast against (E, M)."""
        if a.shape == value.shape:
            return xp.take(xp.reshape(a, (-1,)), ii, axis=0)
        index = (rows if a.shape[0] != 1 else xp.zeros_like(ii)) * a.shape[1] + (
            cols if a.shape[1] != 1 else xp.zeros_like(ii))
        return xp.take(xp.reshape(a, (-1,)), index, axis=0)

    v, w = at(value), at(values)
    floor = promise * (xp.maximum(xp.abs(v), xp.abs(w)) + at(scale))
    suspect = xp.isfinite(v) & (at(gap) > 10 * at(error) + floor) & (
        at(step) > 4 * xp.abs(at(h_e)))
    return bool(xp.any(suspect))
