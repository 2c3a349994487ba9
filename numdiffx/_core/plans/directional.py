"""Directional derivatives: ``J v`` (jvp) and ``H v`` (hvp) without forming J or H.

jvp: one entry, one vector direction ``v`` with a scalar step ``t``: the element-scale
step of the rule at ``max|x|`` divided by ``max|v|``. hvp: one entry per input element,
the mixed stencil of the basis direction ``e_i`` (per-element steps) with ``v`` (a
scalar step for derivative order 2), so the cost is linear in the input size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as _device

from ..evaluation.points import (
    BasisDirection,
    Differences,
    VectorDirection,
    differences,
    representable_steps,
)
from ..problem import Problem
from ..result import DiffResult
from ..stencils import AbstractMethod, ComplexStep, central
from .base import AbstractPlan
from .outcome import Outcome
from .shared import NestedPoints, f_scale, step_power

__all__ = ["DirectionalPlan", "HvpPlan"]


def _vmax(xp: Any, v: Any, dtype: Any) -> Any:
    vmax = xp.max(xp.abs(v)) if v.shape[0] else xp.asarray(1.0, dtype=dtype,
                                                            device=_device(v))
    return xp.where(vmax == 0, xp.asarray(1.0, dtype=vmax.dtype, device=_device(v)), vmax)


def _x_scale(problem: Problem) -> Any:
    """(1,) ``max |x|``: the scale of a step along a direction."""
    xp, real = problem.xp, problem.real_x
    scale = xp.max(xp.abs(real)) if real.shape[0] else xp.asarray(0.0, dtype=real.dtype,
                                                                  device=problem.device)
    return xp.reshape(scale, (1,))


class DirectionalPlan(AbstractPlan):
    """``J(x) v`` from one directional difference (len(stencil) evaluations)."""

    name = "directional"
    directional = True

    def __init__(self, problem: Problem, method: AbstractMethod, v: Any) -> None:
        self.problem, self.method, self.deriv = problem, method, 1
        self.v = v
        self.n_entries, self.n_out = 1, problem.m_out
        self._vmax = _vmax(problem.xp, v, problem.dtype)

    def step_scale(self) -> Any:
        return _x_scale(self.problem)

    def step_x(self) -> Any:
        return None

    def to_steps(self, h: Any) -> Any:
        """The step along v, ``t = h / max|v|``, shape (1,) (no rounding against x: v
        moves many elements)."""
        return h / self.problem.xp.astype(self._vmax, h.dtype)

    def nominal_steps(self, nominal: Any) -> Any:
        return self.problem.xp.reshape(super().nominal_steps(nominal), ())

    def entry_variables(self) -> np.ndarray:
        return np.zeros(1, dtype=np.int64)

    def entry_step(self, h: Any, rows: np.ndarray) -> Any:
        return self.problem.xp.reshape(h, (1,))

    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        p = self.problem
        direction = VectorDirection(method or self.method, self.problem.xp.reshape(h, ()),
                                    self.v)
        return differences(p.evaluator, p.x_flat, p.f0, [direction], np.zeros((1, 0), int),
                           chunk_size=None, memory_budget=self.memory_budget,
                           offsets=offsets, extras=extras)

    def level(self, h: Any, rows: np.ndarray, methods: list[AbstractMethod],
              entry_group: np.ndarray, nested: list[Any]) -> Differences:
        nest: NestedPoints = nested[0]
        if not nest.enabled:
            return self.evaluate(h)
        xp = self.problem.xp
        return nest.level(np.zeros(1, dtype=np.int64), xp.reshape(h, (1,)),
                          lambda offs, pos: self.evaluate(h, offsets=offs),
                          step_power(xp, xp.reshape(h, (1,)), self.method.deriv))

    def f_scale(self) -> Any:
        return self.problem.xp.expand_dims(f_scale(self.problem.xp, self.problem.f0), 0)

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        p = self.problem
        xp = p.xp
        value = xp.reshape(outcome.value, p.out_shape)
        if not full_output:
            return value
        step = xp.reshape(outcome.step, p.out_shape) if outcome.per_entry_step else (
            outcome.step)
        error = None if outcome.error is None else xp.reshape(outcome.error, p.out_shape)
        return DiffResult(value=value, error=error, step=step, nfev=p.nfev,
                          status=xp.reshape(outcome.status, p.out_shape))


class HvpPlan(AbstractPlan):
    """``H(x) v``: per element i, the mixed stencil of ``e_i`` and ``v``."""

    name = "hvp"
    extras_ok = False  # mixed stencils: the estimate uses the smooth prior

    def __init__(self, problem: Problem, method: AbstractMethod, v: Any, *,
                 chunk_size: int | None, memory_budget: int, as_tuple: bool) -> None:
        self.problem, self.method, self.deriv = problem, method, 2
        self.v, self.as_tuple = v, as_tuple
        self.n_entries, self.n_out = problem.n, problem.m_out
        self.chunk_size, self.memory_budget = chunk_size, memory_budget
        self._vmax = _vmax(problem.xp, v, problem.dtype)

    def nominal_steps(self, nominal: Any) -> Any:
        """(per-element steps h, scalar step t along v)."""
        xp = self.problem.xp
        scale = _x_scale(self.problem)
        if isinstance(self.method, ComplexStep):
            h = nominal(self.step_scale(), self.method)
            vec: AbstractMethod = central(order=2)
            t = nominal(scale, vec.with_deriv(1))
        else:
            step_method = self.method.with_deriv(2)
            h = representable_steps(xp, self.step_x(), nominal(self.step_scale(), step_method))
            t = nominal(scale, step_method)
        t = xp.reshape(t, ()) / xp.astype(self._vmax, t.dtype)
        return (h, t)

    def estimate_steps(self, h: Any) -> Any:
        return self.problem.xp.expand_dims(h[0], 1)

    def estimate_method(self) -> AbstractMethod:
        return (central(order=2, deriv=2) if isinstance(self.method, ComplexStep)
                else self.method.with_deriv(2))

    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        p = self.problem
        h_basis, t = h
        meth = method or self.method
        vec = central(order=2) if isinstance(meth, ComplexStep) else meth
        entries = (np.arange(p.n) if rows is None else rows).reshape(-1, 1)
        return differences(p.evaluator, p.x_flat, p.f0,
                           [BasisDirection(meth, h_basis, 0), VectorDirection(vec, t, self.v)],
                           entries, chunk_size=self.chunk_size,
                           memory_budget=self.memory_budget, extras=extras)

    def f_scale(self) -> Any:
        return self.problem.xp.expand_dims(f_scale(self.problem.xp, self.problem.f0), 0)

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        p = self.problem
        xp = p.xp

        def split(a: Any) -> list[Any]:
            return p.split(xp.permute_dims(a, (1, 0)), p.out_shape)

        values, statuses = split(outcome.value), split(outcome.status)
        errors = split(outcome.error) if outcome.error is not None else [None] * len(values)
        steps = p.split(outcome.step[0])
        if full_output:
            res = [DiffResult(value=v, error=e, step=st, nfev=p.nfev, status=s)
                   for v, e, st, s in zip(values, errors, steps, statuses)]
        else:
            res = values
        return tuple(res) if self.as_tuple else res[0]
