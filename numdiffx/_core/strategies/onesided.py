"""Domain edges: a two-sided stencil that met NaN/inf on one side only.

Where f is finite at x but not finite at a stencil point on one side (a domain edge
between x - h and x + h), the one-sided stencil of the same order on the finite side
gives the value, with status ``ONE_SIDED``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numdiffx.backends import to_host

from ..result import Status
from ..stencils import AbstractMethod, ComplexStep, Stencil, backward, forward

__all__ = ["one_sided_retry"]


def _two_sided(meth: AbstractMethod) -> bool:
    if isinstance(meth, ComplexStep) or not isinstance(meth, Stencil):
        return False
    offs = meth.float_offsets
    return min(offs) < 0 < max(offs)


def one_sided_retry(plan: Any, h: Any, values: Any, status: Any
                    ) -> tuple[Any, Any, Any | None]:
    """Replace NON_FINITE entries of a two-sided stencil by a finite one-sided estimate.

    ``values``/``status`` are the plan's (E, M); the one-sided stencils are evaluated by
    ``plan.evaluate`` with the steps times a factor, for the failing entry rows only.
    Only entries where f(x) is finite are
    retried, forward first, then backward. A one-sided estimate is accepted only if the
    same stencil at half the step agrees with it to ``1e3 * eps**(p/(p+q))`` relative:
    at a singular edge (sqrt or log with the edge inside the step) the two disagree and
    the entry stays NON_FINITE instead of taking a meaningless value. Returns values,
    status and, where an entry was replaced, the error estimate ``2 |v(h) - v(h/2)|``
    (None when nothing was retried).
    """
    xp, meth, backend = plan.problem.xp, plan.method, plan.problem.backend
    if not _two_sided(meth) or backend.is_traced(status):
        return values, status, None

    def run(m: AbstractMethod, rows: np.ndarray, factor: float) -> tuple[Any, Any]:
        d = plan.evaluate(h * factor, rows, method=m)
        return d.values, d.status

    f0_ok = xp.isfinite(plan.f0_entries())
    bad = (status == int(Status.NON_FINITE)) & f0_ok
    if not bool(xp.any(bad)):  # the usual case: one scalar, not the (E, M) mask, to host
        return values, status, None
    bad_host = to_host(bad)
    rows = np.nonzero(bad_host.reshape(bad_host.shape[0], -1).any(axis=1))[0]
    if rows.size == 0:
        return values, status, None
    n = values.shape[0]
    pos = np.zeros(n, dtype=np.int64)
    pos[rows] = np.arange(rows.size)
    chosen = np.zeros(n, dtype=bool)
    chosen[rows] = True
    dev = plan.problem.device
    take = xp.asarray(pos, device=dev)
    mask = xp.expand_dims(xp.asarray(chosen, device=dev), 1)
    code = xp.asarray(int(Status.ONE_SIDED), dtype=status.dtype, device=dev)
    eps = float(xp.finfo(values.dtype).eps) if xp.isdtype(values.dtype, "real floating") else (
        float(np.finfo(np.float64).eps))
    tol = 1e3 * eps ** (meth.order / (meth.order + meth.deriv))
    error = xp.full(values.shape, math.nan, dtype=values.dtype, device=dev)
    for stencil in (forward, backward):
        side = stencil(order=meth.order, deriv=meth.deriv)
        v1, s1 = run(side, rows, 1.0)
        v2, s2 = run(side, rows, 0.5)
        with np.errstate(all="ignore"):
            agree = xp.abs(v1 - v2) <= tol * xp.maximum(xp.abs(v1), xp.abs(v2)) + tol * eps
        ok = (s1 == int(Status.SUCCESS)) & (s2 == int(Status.SUCCESS)) & agree
        gap = 2 * xp.abs(v1 - v2)  # first order: v(h) is off by about |v(h) - v(h/2)|
        v1, ok, gap = (xp.take(a, take, axis=0) for a in (v1, ok, gap))
        use = bad & mask & ok
        values = xp.where(use, v1, values)
        status = xp.where(use, code, status)
        error = xp.where(use, gap, error)
        bad = bad & ~use
    return values, status, error


