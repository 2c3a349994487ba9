"""Dense Jacobian (and gradient): one basis direction per input element, a column each.

Entries are the columns ``e_i`` of the flat input; values are (n, M), laid out as
``out.shape + in.shape`` (``torch.func.jacrev``'s layout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..evaluation.points import BasisDirection, Differences, differences
from ..problem import Problem
from ..result import DiffResult
from ..stencils import AbstractMethod
from .base import AbstractPlan
from .outcome import Outcome
from .shared import NestedPoints, check_dense_fits, f_scale, scatter_rows, step_power

__all__ = ["ColumnsPlan"]


class ColumnsPlan(AbstractPlan):
    name = "columns"
    one_sided_retry = True
    blocked_tableau = True

    def __init__(self, problem: Problem, method: AbstractMethod, *, chunk_size: int | None,
                 memory_budget: int) -> None:
        self.problem, self.method, self.deriv = problem, method, 1
        self.n_entries, self.n_out = problem.n, problem.m_out
        self.chunk_size, self.memory_budget = chunk_size, memory_budget
        check_dense_fits(problem.m_out, problem.n, problem.dtype)

    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        p = self.problem
        entries = (np.arange(p.n) if rows is None else rows).reshape(-1, 1)
        return differences(p.evaluator, p.x_flat, p.f0,
                           [BasisDirection(method or self.method, h, 0)], entries,
                           chunk_size=self.chunk_size, memory_budget=self.memory_budget,
                           offsets=offsets, extras=extras)

    def level(self, h: Any, rows: np.ndarray, methods: list[AbstractMethod],
              entry_group: np.ndarray, nested: list[Any]) -> Differences:
        xp, device = self.problem.xp, self.problem.device
        parts = []
        for g, m in enumerate(methods):
            sel = rows[entry_group[rows] == g]
            if not sel.size:
                continue
            nest: NestedPoints = nested[g]
            if nest.enabled:
                h_sel = xp.take(h, xp.asarray(sel, device=device), axis=0)

                def points(offs: list[float], pos: np.ndarray, m: AbstractMethod = m,
                           sel: np.ndarray = sel) -> Differences:
                    return self.evaluate(h, sel[pos], method=m, offsets=offs)

                d = nest.level(sel, h_sel, points, step_power(xp, h_sel, m.deriv))
            else:
                d = self.evaluate(h, sel, method=m)
            parts.append((sel, d.values, d.status))
        values, status = scatter_rows(xp, parts, rows, device)
        return Differences(values, status)

    def f_scale(self) -> Any:
        return self.problem.xp.expand_dims(f_scale(self.problem.xp, self.problem.f0), 0)

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        p = self.problem
        xp = p.xp
        shape = (*p.out_shape, *p.shapes[0])

        def lay(a: Any) -> Any:
            return xp.reshape(xp.permute_dims(a, (1, 0)), shape)

        value = lay(outcome.value)
        if not full_output:
            return value
        step = lay(outcome.step) if outcome.per_entry_step else xp.reshape(outcome.step,
                                                                           p.shapes[0])
        error = None if outcome.error is None else lay(outcome.error)
        return DiffResult(value=value, error=error, step=step, nfev=p.nfev,
                          status=lay(outcome.status))



