"""Hessian from second-derivative and mixed stencils (not nested first differences).

Entries: the n diagonal entries (the method's second-derivative stencil of the same
family, central: ``[1, -2, 1] / h**2``) then the upper pairs (i < j, the tensor product
of the first-derivative stencil with itself). The step ``h_i`` of a rule is the
diagonal's; the mixed entry (i, j) is stepped at ``(rho h_i, rho h_j)``, ``rho`` the ratio
of the two stencils' error-balancing steps (:func:`mixed_step_ratio`: 1/2 for central,
1 for forward and backward differences). The complex step uses the mixed
complex/central formula for every entry. The result is exactly symmetric, laid out as
``out + in + in``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..evaluation.points import BasisDirection, Differences, differences
from ..problem import Problem
from ..result import DiffResult, Status
from ..stencils import COMPLEX_HESSIAN_STEP, AbstractMethod, ComplexStep, Stencil, central
from .base import AbstractPlan
from .outcome import Outcome
from .shared import f_scale, scatter_rows

__all__ = ["HessianPlan", "mixed_step_ratio"]


def mixed_step_ratio(method: AbstractMethod, eps: float) -> float:
    """The mixed entries' step over the diagonal's, each at its own error balance.

    The diagonal's second-derivative stencil (order ``p_d``) balances at
    ``c_d eps**(1/(p_d+2))`` (:attr:`Stencil.step_constant`). The mixed stencil is the
    tensor product of the first-derivative stencil (order ``p``, round-off constant
    ``C_r``, truncation constant ``C_t``) with itself: its round-off is
    ``C_r**2 eps |f| / (h_i h_j)`` and its truncation ``2 C_t h**p |f^(p+2)|`` (one term
    per direction), so it balances at ``(C_r**2 / (p C_t))**(1/(p+2)) eps**(1/(p+2))``.
    Central differences: ``3**(1/4)`` against ``48**(1/4)``, exactly 1/2 (statsmodels'
    ``approx_hess3`` steps its mixed entries at half its diagonal's step too); forward
    and backward: 1. With the diagonal's step for every entry, the mixed entries of a
    central Hessian carried four times the truncation they balance at (standard errors
    of a logit 3.9e-5 off; 1.2e-6 at the balanced step). 1 for the complex step and for
    any stencil whose constants are not finite and positive."""
    if isinstance(method, ComplexStep) or not isinstance(method, Stencil) or method.deriv != 1:
        return 1.0
    diag = method.with_deriv(2)
    p, c_r, c_t = method.order, method.roundoff_constant, method.truncation_constant
    with np.errstate(all="ignore"):
        try:
            mixed = (c_r * c_r / (p * c_t)) ** (1.0 / (p + 2)) * eps ** (1.0 / (p + 2))
            ratio = mixed / (diag.step_constant * eps ** (1.0 / (diag.order + 2)))
        except (ZeroDivisionError, OverflowError, ValueError):
            return 1.0
    return float(ratio) if math.isfinite(ratio) and ratio > 0 else 1.0


class HessianPlan(AbstractPlan):
    name = "hessian"
    # diagonal entries return their stencil's diagnostics (second and first difference);
    # mixed entries have none (NaN: the estimate uses the smooth prior there) and inherit
    # a failed status of their diagonals (:meth:`inherit`)
    extras_ok = True

    def __init__(self, problem: Problem, method: AbstractMethod, *, chunk_size: int | None,
                 memory_budget: int, pairs: np.ndarray | None = None) -> None:
        """``pairs``: the (k, 2) mixed entries ``i < j`` (default: all; a sparse Hessian
        passes its pattern's)."""
        self.problem, self.method, self.deriv = problem, method, 2
        n = problem.n
        if pairs is None:
            upper = np.triu_indices(n, k=1)
            pairs = np.stack(upper, axis=1).astype(np.int64) if n else np.zeros((0, 2),
                                                                                np.int64)
        self.pairs = pairs
        self.n_entries, self.n_out = n + self.pairs.shape[0], problem.m_out
        self.chunk_size, self.memory_budget = chunk_size, memory_budget
        self.complex_step = isinstance(method, ComplexStep)
        self._first = np.concatenate([np.arange(n), self.pairs[:, 0]])
        self._second = np.concatenate([np.arange(n), self.pairs[:, 1]])
        # the mixed entries' step over the diagonal's (1 for the complex step)
        self.mixed_ratio = mixed_step_ratio(method, problem.eps)

    def mixed_steps(self, h: Any) -> Any:
        """(n,) the mixed entries' steps for the diagonal's ``h``: ``rho h``, made
        representable (``(x + rho h) - x``), so every entry's points are exact."""
        if self.mixed_ratio == 1.0:  # the complex step's tuple among them
            return h
        return self.to_steps(h * self.mixed_ratio)

    # -- steps ---------------------------------------------------------------------------
    def nominal_steps(self, nominal: Any) -> Any:
        if not self.complex_step:
            return super().nominal_steps(nominal)
        # both directions take central's first-derivative step, as statsmodels'
        # approx_hess_cs (Ridout 2009): a tiny imaginary step (eps |x|) carries so little
        # signal that the imaginary round-off of a Kalman filter swamps it (ARIMA(3,0,0)
        # on the sunspots: infinite standard errors); the truncation is O(h**2) anyway.
        # auto floors it at typical / 10, as statsmodels does (an AR(2) variance of
        # 6.8e-5 at a step of 8.7e-6: standard errors 9e-4 off, 9e-8 at typical / 10)
        from ..evaluation.points import representable_steps

        scale = self.step_scale()
        h_r = representable_steps(self.problem.xp, self.step_x(),
                                  nominal(scale, COMPLEX_HESSIAN_STEP))
        return (h_r, h_r)

    def to_steps(self, h: Any) -> Any:
        if not self.complex_step:
            return super().to_steps(h)
        # adaptive levels: the same step in the complex and the real direction
        from ..evaluation.points import representable_steps

        return (h, representable_steps(self.problem.xp, self.step_x(), h))

    def entry_variables(self) -> np.ndarray:
        return self._first

    def estimate_steps(self, h: Any) -> Any:
        return super().estimate_steps(h[1] if self.complex_step else h)

    def estimate_method(self) -> AbstractMethod:
        return central(order=2, deriv=2) if self.complex_step else self.method.with_deriv(2)

    def output_scale(self, values: Any) -> Any:
        """(E, M) the scale an entry's error is judged against: ``sqrt(|H_ii| |H_jj|)``,
        the geometric mean of its diagonals (``|H_ii|`` on the diagonal).

        Hessian entries carry the units of their two variables: relative to the largest
        entry of the matrix, a variance's curvature (1e10 for an AR(2) on GDP growth)
        would make every other entry's error look negligible, and standard errors 70%
        off pass. Relative to its diagonals an entry is judged as the standard errors
        see it, whatever the parameters' units."""
        xp, n = self.problem.xp, self.problem.n
        a = xp.abs(values)
        top = a[:n, ...]
        diag = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
        # a zero diagonal (f linear in x_i: x_0 x_1 has H_00 = 0) would make its row's
        # tolerance zero and an exact 0.0 a failure; no diagonal is judged below
        # sqrt(eps) of the largest entry
        finite = xp.where(xp.isfinite(a), a, xp.zeros_like(a))
        floor = math.sqrt(self.problem.eps) * xp.max(finite, axis=0, keepdims=True)
        diag = xp.maximum(diag, floor)
        if self.pairs.shape[0] == 0:
            return diag
        dev = self.problem.device
        d_i = xp.take(diag, xp.asarray(self.pairs[:, 0], device=dev), axis=0)
        d_j = xp.take(diag, xp.asarray(self.pairs[:, 1], device=dev), axis=0)
        return xp.concat([diag, xp.sqrt(d_i) * xp.sqrt(d_j)], axis=0)

    def judged_scale(self, values: Any, error: Any) -> Any:
        """:meth:`output_scale`, except that a diagonal that is zero within its own
        estimate (f linear in x_i: ``x_0 + x_1**2 + x_2**3`` at x = 68 gives
        ``H_00 = 0 +- 1e-7``, the round-off of f ~ 3e5) is judged against the largest
        entry: the entry says f is flat there, not how accurate a curvature is."""
        xp, n = self.problem.xp, self.problem.n
        a = xp.abs(values)
        with np.errstate(invalid="ignore"):
            flat = a[:n, ...] <= xp.abs(error[:n, ...])
        finite = xp.where(xp.isfinite(a), a, xp.zeros_like(a))
        top = xp.max(finite, axis=0, keepdims=True)
        widened = xp.where(flat, top + xp.zeros_like(a[:n, ...]), a[:n, ...])
        return self.output_scale(xp.concat([widened, values[n:, ...]], axis=0))

    def entry_step(self, h: Any, rows: np.ndarray) -> Any:
        """The diagonal-equivalent step of each entry, ``sqrt(h_i h_j)``: a mixed entry is
        evaluated at ``rho`` times it (:func:`mixed_step_ratio`), where its round-off and
        truncation equal those of the diagonal stencil at ``h`` (the point of balancing
        both), so the estimates and the reported steps stay in the diagonal's terms."""
        if isinstance(h, tuple):  # complex step: the real direction's step
            h = h[1]
        xp, dev = self.problem.xp, self.problem.device
        hi = xp.take(h, xp.asarray(self._first[rows], device=dev), axis=0)
        hj = xp.take(h, xp.asarray(self._second[rows], device=dev), axis=0)
        return xp.sqrt(hi) * xp.sqrt(hj)  # no overflow

    def entry_methods(self, methods: list[AbstractMethod], group: np.ndarray
                      ) -> tuple[list[AbstractMethod], np.ndarray, list[float]]:
        n = self.problem.n
        base = methods[0]
        kinds = np.concatenate([np.zeros(n, np.int64), np.ones(self.pairs.shape[0], np.int64)])
        if self.complex_step:  # Im[f(x + ih e_i + h e_j) - f(x + ih e_i - h e_j)] / (2 h h)
            return [base, base], kinds, [1.0, 1.0]
        w = base.roundoff_constant
        diag = base.with_deriv(2)
        return [diag, base], kinds, [diag.roundoff_constant, w * w]

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        p = self.problem
        n = p.n
        rows = np.arange(self.n_entries) if rows is None else rows
        meth = method or self.method

        def run(directions: list[Any], entries: np.ndarray,
                extra: tuple[tuple[float, ...], ...] = ()) -> Differences:
            return differences(p.evaluator, p.x_flat, p.f0, directions, entries,
                               chunk_size=self.chunk_size, memory_budget=self.memory_budget,
                               extras=extra)

        if self.complex_step:
            h_c, h_r = h
            table = np.concatenate([np.stack([np.arange(n)] * 2, axis=1), self.pairs], axis=0)
            d = run([BasisDirection(meth, h_c, 0), BasisDirection(central(order=2), h_r, 1)],
                    table[rows])
            if not extras:
                return d
            return Differences(d.values, d.status, self._real_diagonal(h_r, rows, extras))
        parts, extra_parts = [], []
        diag = rows[rows < n]
        if diag.size:
            d = run([BasisDirection(meth.with_deriv(2), h, 0)], diag.reshape(-1, 1), extras)
            parts.append((diag, d.values, d.status))
            extra_parts.append((diag, d.extras))
        mixed = rows[rows >= n]
        if mixed.size:
            h_m = self.mixed_steps(h)
            d = run([BasisDirection(meth, h_m, 0), BasisDirection(meth, h_m, 1)],
                    self.pairs[mixed - n])
            parts.append((mixed, d.values, d.status))
            nan = p.xp.full(d.values.shape, math.nan, dtype=d.values.dtype, device=p.device)
            extra_parts.append((mixed, [nan for _ in extras]))
        if not parts:
            return run([BasisDirection(meth.with_deriv(2), h, 0)], np.zeros((0, 1), np.int64),
                       extras)
        values, status = scatter_rows(p.xp, parts, rows, p.device)
        laid = [scatter_rows(p.xp, [(sel, ex[k], st) for (sel, ex), (_, _, st) in
                                    zip(extra_parts, parts)], rows, p.device)[0]
                for k in range(len(extras))]
        return Differences(values, status, laid)

    def _real_diagonal(self, h: Any, rows: np.ndarray, extras: tuple[tuple[float, ...], ...]
                       ) -> list[Any]:
        """For the complex step's estimate: the real second difference of each diagonal
        row at the same step and its diagnostics (``extras`` of ``central(2, 2)``), as
        ``[*diagnostics, value]``, NaN on mixed rows but for their slope (that of their
        first variable's diagonal). The complex points alone say nothing
        about a step that is too large; these 2 n real points do (2 n evaluations)."""
        p = self.problem
        xp, n = p.xp, p.n
        diag = rows[rows < n]
        d = differences(p.evaluator, p.x_flat, p.f0, [BasisDirection(central(2, 2), h, 0)],
                        diag.reshape(-1, 1), chunk_size=self.chunk_size,
                        memory_budget=self.memory_budget, extras=extras)
        parts = [*d.extras, d.values]
        if diag.size == rows.size:
            return parts
        mixed = rows[rows >= n]
        nan = xp.full((mixed.size, p.m_out), math.nan, dtype=d.values.dtype, device=p.device)
        zero = xp.zeros((mixed.size, p.m_out), dtype=xp.int8, device=p.device)
        fill = [nan for _ in parts]
        if len(d.extras) >= 2 and diag.size:
            # a mixed row's imaginary parts carry h f_i (i its first variable): its slope
            # is measured on diagonal i (at the MLE ~0), not the prior |f| / s (which made
            # 53 Poisson entries accurate to 1e-11 ROUNDOFF), scaled to the entry's step
            pos = np.full(n, -1, dtype=np.int64)
            pos[diag] = np.arange(diag.size)
            first, second = self.pairs[mixed - n, 0], self.pairs[mixed - n, 1]
            have = xp.asarray(pos[first] >= 0, device=p.device)
            dev = p.device
            below = xp.take(d.extras[1], xp.asarray(np.maximum(pos[first], 0), device=dev),
                            axis=0)
            h_i = xp.take(h, xp.asarray(first, device=dev), axis=0)
            h_j = xp.take(h, xp.asarray(second, device=dev), axis=0)
            below = below * xp.expand_dims(xp.sqrt(h_j) / xp.sqrt(h_i), 1)
            fill[1] = xp.where(xp.expand_dims(have, 1), below, nan)
        return [scatter_rows(xp, [(diag, part, d.status), (mixed, other, zero)], rows,
                             p.device)[0] for part, other in zip(parts, fill)]

    def inherit(self, error: Any, status: Any) -> tuple[Any, Any]:
        """A mixed entry (i, j) is no more trustworthy than its diagonals: where (i, i) or
        (j, j) failed (their own points showed a kink, a domain edge, noise or
        cancellation at these steps, which the mixed points straddle too), the mixed
        entry takes that status and at least ``sqrt(error_ii error_jj)``."""
        xp, n = self.problem.xp, self.problem.n
        if self.pairs.shape[0] == 0 or error is None:
            return error, status
        dev = self.problem.device
        first = xp.asarray(self.pairs[:, 0], device=dev)
        second = xp.asarray(self.pairs[:, 1], device=dev)
        d_status, d_error = status[:n, ...], error[:n, ...]
        s_i, s_j = xp.take(d_status, first, axis=0), xp.take(d_status, second, axis=0)
        e_i, e_j = xp.take(d_error, first, axis=0), xp.take(d_error, second, axis=0)
        m_status, m_error = status[n:, ...], error[n:, ...]
        ok = int(Status.SUCCESS)
        worst = xp.where(s_i != ok, s_i, s_j)
        failed = (worst != ok) & (m_status == ok)
        with np.errstate(all="ignore"):
            bound = xp.sqrt(xp.abs(e_i)) * xp.sqrt(xp.abs(e_j))
        m_error = xp.where(failed, xp.maximum(m_error, bound), m_error)
        m_status = xp.where(failed, worst, m_status)
        return (xp.concat([d_error, m_error], axis=0),
                xp.concat([d_status, m_status], axis=0))

    def level(self, h: Any, rows: np.ndarray, methods: list[AbstractMethod],
              entry_group: np.ndarray, nested: list[Any]) -> Differences:
        return self.evaluate(h, rows)

    def f_scale(self) -> Any:
        return self.problem.xp.expand_dims(f_scale(self.problem.xp, self.problem.f0), 0)

    # -- result --------------------------------------------------------------------------
    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        p = self.problem
        xp, n = p.xp, p.n
        # (i, j) -> row of [diagonal entries; upper pairs], symmetric
        index = np.empty((n, n), dtype=np.int64)
        index[np.arange(n), np.arange(n)] = np.arange(n)
        index[self.pairs[:, 0], self.pairs[:, 1]] = n + np.arange(self.pairs.shape[0])
        index[self.pairs[:, 1], self.pairs[:, 0]] = n + np.arange(self.pairs.shape[0])
        take = xp.asarray(index.reshape(-1), device=p.device)
        in_shape = p.shapes[0]

        def layout(v: Any) -> Any:
            full = xp.take(v, take, axis=0)  # (n*n, M)
            return xp.reshape(xp.permute_dims(full, (1, 0)), (*p.out_shape, *in_shape,
                                                                *in_shape))

        value = layout(outcome.value)
        if not full_output:
            return value
        if outcome.per_entry_step:
            step = layout(outcome.step)
        else:
            h = outcome.step[1] if self.complex_step else outcome.step
            step = xp.reshape(h, in_shape)
        error = None if outcome.error is None else layout(outcome.error)
        return DiffResult(value=value, error=error, step=step, nfev=p.nfev,
                          status=layout(outcome.status))


