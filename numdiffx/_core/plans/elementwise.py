"""Elementwise derivative: every element of x perturbed at once, one call per stencil point.

``f`` maps x to an array of x's shape whose element i depends only on element i, so a
vector of per-element steps moves every element at once and the cost is ``len(stencil)``
calls whatever x's size. Entries are the elements; each has one output (its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..evaluation.points import Differences
from ..holomorphic import complex_of
from ..problem import Problem
from ..result import DiffResult, Status
from ..stencils import AbstractMethod, ComplexStep
from .base import AbstractPlan
from .outcome import Outcome
from .shared import NestedPoints, step_power

__all__ = ["ElementwisePlan"]


class ElementwisePlan(AbstractPlan):
    name = "elementwise"
    one_sided_retry = True

    def __init__(self, problem: Problem, method: AbstractMethod) -> None:
        if problem.out_shape != problem.shapes[0]:
            raise ValueError(f"derivative needs an elementwise f returning x's shape "
                             f"{problem.shapes[0]}; f returned {problem.out_shape}. Use "
                             "nd.jacobian for general functions.")
        self.problem, self.method, self.deriv = problem, method, method.deriv
        self.n_entries, self.n_out = problem.n, 1

    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        """All elements at once; values (E, 1) (raw: (E, k, 1)), restricted to ``rows``."""
        p = self.problem
        xp, x = p.xp, p.x_flat
        meth = method or self.method
        is_complex = isinstance(meth, ComplexStep)
        work = xp.astype(x, complex_of(xp, x.dtype)) if is_complex else x
        acc = None
        raw, ys = [], []
        finite = xp.isfinite(p.f0)
        points = meth.points if offsets is None else [(float(o), 1.0) for o in offsets]
        if not is_complex:  # x itself: f(x) - f(x) contributes nothing; f(x) is known
            points = tuple((o, w) for o, w in points if o != 0)
        for offset, weight in points:
            with np.errstate(all="ignore"):  # inf steps or x + h beyond the largest float:
                shift = xp.astype(h, work.dtype) * offset if isinstance(offset, complex) else (
                    h * offset)
                point = work + shift  # NON_FINITE below
            y = p.evaluator(xp.expand_dims(point, 0))[0, :]
            finite = finite & xp.isfinite(y)
            with np.errstate(all="ignore"):  # inf - inf where f is not finite: status says so
                if offsets is not None:
                    raw.append(y - p.f0)
                    continue
                if extras:
                    ys.append(y - p.f0)
                term = (y if is_complex else y - p.f0) * weight
                acc = term if acc is None else acc + term
        dev = p.device  # (looked up once: x's device)
        if offsets is not None:
            acc = xp.stack(raw, axis=1)
        assert acc is not None
        if is_complex:
            acc = xp.real(acc)
        with np.errstate(all="ignore"):
            if offsets is None:
                acc = acc / xp.where(h == 0, xp.asarray(1.0, dtype=h.dtype, device=dev),
                                     h) ** meth.deriv
            extra_values = [sum((y * w for y, w in zip(ys, weights) if w != 0),
                                xp.zeros_like(p.f0)) for weights in extras]

        def code(s: Status) -> Any:
            return xp.asarray(int(s), dtype=xp.int8, device=dev)

        status = xp.where(h == 0, code(Status.STEP_TOO_SMALL),
                          xp.where(finite & xp.isfinite(h), code(Status.SUCCESS),
                                   code(Status.NON_FINITE)))
        ok = status == 0 if offsets is None else xp.expand_dims(status == 0, 1)
        acc = xp.where(ok, acc, xp.asarray(xp.nan, dtype=acc.dtype, device=dev))
        values = xp.expand_dims(acc, -1)  # (n, 1) or (n, k, 1)
        status = xp.expand_dims(status, 1)
        extra_out = [xp.expand_dims(e, 1) for e in extra_values]
        if rows is not None and rows.shape[0] != p.n:
            at = xp.asarray(rows, device=p.device)
            values, status = xp.take(values, at, axis=0), xp.take(status, at, axis=0)
            extra_out = [xp.take(e, at, axis=0) for e in extra_out]
        return Differences(values, status, extra_out)

    def level(self, h: Any, rows: np.ndarray, methods: list[AbstractMethod],
              entry_group: np.ndarray, nested: list[Any]) -> Differences:
        p = self.problem
        xp, device, n = p.xp, p.device, p.n
        group_dev = xp.asarray(entry_group, device=device)
        everyone = np.arange(n)
        vals = stat = None
        for g, m in enumerate(methods):
            if not np.any(entry_group[rows] == g):
                continue
            # only this group's elements move; the others get step 0 (f(x), discarded)
            hm = xp.where(group_dev == g, h, xp.zeros_like(h))
            nest: NestedPoints = nested[g]
            if nest.enabled:  # f is elementwise: every call moves all n elements
                def points(offs: list[float], pos: np.ndarray, m: AbstractMethod = m,
                           hm: Any = hm) -> Differences:
                    return self.evaluate(hm, pos, method=m, offsets=offs)

                d = nest.level(everyone, hm, points, step_power(xp, hm, m.deriv),
                               together=True)
            else:
                d = self.evaluate(hm, method=m)
            mine = xp.expand_dims(group_dev == g, 1)
            vals = d.values if vals is None else xp.where(mine, d.values, vals)
            stat = d.status if stat is None else xp.where(mine, d.status, stat)
        assert vals is not None and stat is not None
        take = xp.asarray(rows, device=device)
        return Differences(xp.take(vals, take, axis=0), xp.take(stat, take, axis=0))

    def f_scale(self) -> Any:
        return self.problem.xp.expand_dims(self.problem.xp.abs(self.problem.f0), 1)

    def f0_entries(self) -> Any:
        return self.problem.xp.expand_dims(self.problem.f0, 1)

    def output_scale(self, values: Any) -> Any:
        return self.problem.xp.zeros_like(values)  # every element is its own function

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        p = self.problem
        xp, shape = p.xp, p.shapes[0]
        value = xp.reshape(outcome.value, shape)
        if not full_output:
            return value
        error = None if outcome.error is None else xp.reshape(outcome.error, shape)
        return DiffResult(value=value, error=error, step=xp.reshape(outcome.step, shape),
                          nfev=p.nfev, status=xp.reshape(outcome.status, shape))
