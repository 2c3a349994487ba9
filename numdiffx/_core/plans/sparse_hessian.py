"""Sparse Hessians: the pattern's entries only, from f or from a gradient by star colouring.

From f (:class:`SparseHessianPlan`): the dense Hessian's plan restricted to the pattern:
the n diagonal entries and one mixed stencil per structural pair ``i < j``, the same
stencils, steps (the measured default, or any rule's), error estimates and statuses as
the dense Hessian, at ``len(diagonal stencil) n + 4 pairs + 1`` evaluations for central
(``4 n + 2 (nnz - n) + 1`` with the measured default) instead of ``2 n**2 + 2 n + 1``.

From ``g`` (:class:`StarColouredPlan`): the sparse Jacobian of g, its columns grouped by
a star colouring of the pattern (:mod:`numdiffx._core.symmetric`); each entry ``i <= j``
is read once, where its colour group leaves it alone, so the cost is the star
chromatic number of the pattern (3 on a band, 2 on an arrowhead) per stencil point.

Both lay their entries out as the full symmetric pattern (both triangles, row-major): a
sparse matrix of the input's library, or dense with ``sparse_output=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numdiffx.backends.sparse import SparseJacobian, scatter_dense

from ..problem import Problem
from ..result import DiffResult
from ..sparse import SparsityPattern
from ..stencils import AbstractMethod
from ..symmetric import cached, layout_index, star_colouring, star_reads, upper_pairs
from .coloured import ColouredPlan
from .hessian import HessianPlan
from .outcome import Outcome
from .shared import check_dense_fits

__all__ = ["SparseHessianPlan", "SparseHessianResult", "StarColouredPlan"]


@dataclass(frozen=True)
class SparseHessianResult(DiffResult):
    """A sparse Hessian's :class:`DiffResult` (``error``, ``step`` where per entry, and
    ``status`` per stored nonzero, row-major) with the ``pattern`` it was computed on:
    the detected one with ``sparsity="detect"``, to pass as ``sparsity=`` next time."""

    pattern: SparsityPattern | None = None


class _Layout:
    """Entries -> the full symmetric ``pattern``'s nonzeros (row-major)."""

    def __init__(self, problem: Problem, pattern: SparsityPattern, index: np.ndarray,
                 sparse_output: bool) -> None:
        """``index``: :func:`~numdiffx._core.symmetric.layout_index` of the entries."""
        self.problem, self.pattern, self.sparse_output = problem, pattern, sparse_output
        if not sparse_output:
            check_dense_fits(problem.n, problem.n, problem.dtype)
        self.take = problem.xp.asarray(index, device=problem.device)

    def per_nonzero(self, a: Any) -> Any:
        """(E, 1) per entry -> (nnz,) per nonzero of the full pattern."""
        return self.problem.xp.take(self.problem.xp.reshape(a, (-1,)), self.take, axis=0)

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        p, pattern = self.problem, self.pattern
        xp, dev = p.xp, p.device
        data = self.per_nonzero(outcome.value)
        shape = (p.n, p.n)
        if self.sparse_output:
            rows = xp.asarray(pattern.rows, device=dev)
            cols = xp.asarray(pattern.cols, device=dev)
            value = p.backend.to_sparse(rows, cols, data, shape, xp)
            if value is None:
                value = SparseJacobian(rows, cols, data, shape)
        else:
            dense = scatter_dense(xp, pattern.rows, pattern.cols, data, shape, dev)
            value = xp.reshape(dense, (*p.shapes[0], *p.shapes[0]))
        if not full_output:
            return value
        if outcome.per_entry_step:
            step = self.per_nonzero(outcome.step)
        else:
            h = outcome.step[1] if isinstance(outcome.step, tuple) else outcome.step
            step = xp.reshape(h, p.shapes[0])
        error = None if outcome.error is None else self.per_nonzero(outcome.error)
        return SparseHessianResult(value=value, error=error, step=step, nfev=p.nfev,
                                   status=self.per_nonzero(outcome.status), pattern=pattern)


class SparseHessianPlan(HessianPlan):
    """The dense Hessian's plan on the pattern's pairs only (module doc); scalar f."""

    def __init__(self, problem: Problem, method: AbstractMethod, pattern: SparsityPattern, *,
                 sparse_output: bool, chunk_size: int | None, memory_budget: int) -> None:
        super().__init__(problem, method, chunk_size=chunk_size, memory_budget=memory_budget,
                         pairs=cached(pattern, "pairs", lambda: upper_pairs(pattern)))
        self.pattern = pattern
        self.layout = _Layout(problem, pattern, cached(pattern, "pairs layout", lambda: (
            layout_index(pattern, self._first, self._second))), sparse_output)

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        return self.layout.finish(outcome, full_output)


@dataclass(frozen=True, eq=False)
class _Reads(SparsityPattern):
    """Where the entries are read: ``(row, column)`` in g's Jacobian, one per entry
    ``i <= j``; ``colours`` the star colouring (a column's colour names its group)."""

    star: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def colours(self) -> np.ndarray:  # type: ignore[override]
        return self.star


def _star_reads(pattern: SparsityPattern) -> _Reads:
    """Where each entry ``i <= j`` is read, with the star colouring (cached per pattern)."""
    colours = star_colouring(pattern)
    keep = pattern.rows <= pattern.cols
    r, c = star_reads(pattern, colours, pattern.rows[keep], pattern.cols[keep])
    return _Reads(r, c, pattern.shape, colours)


class StarColouredPlan(ColouredPlan):
    """The Hessian as the Jacobian of g, columns grouped by a star colouring."""

    def __init__(self, problem: Problem, method: AbstractMethod, pattern: SparsityPattern, *,
                 sparse_output: bool, chunk_size: int | None, memory_budget: int) -> None:
        reads = cached(pattern, "reads", lambda: _star_reads(pattern))
        super().__init__(problem, method, reads, sparse_output=True, chunk_size=chunk_size,
                         memory_budget=memory_budget)
        self.layout = _Layout(problem, pattern, cached(pattern, "reads layout", lambda: (
            layout_index(pattern, reads.rows, reads.cols))), sparse_output)
        # the scale an entry is judged against: the largest entry of its row of H, both
        # triangles (a read row holds only the entries read there)
        self._rows = cached(pattern, "rows tables", lambda: _row_tables(pattern))

    def output_scale(self, values: Any) -> Any:
        p = self.problem
        xp, dev = p.xp, p.device
        a = xp.abs(self.layout.per_nonzero(values))
        a = xp.where(xp.isfinite(a), a, xp.zeros_like(a))
        table, heavy, order = self._rows
        if not a.shape[0]:
            return xp.zeros_like(values)
        padded = xp.concat([a, xp.zeros((1,), dtype=a.dtype, device=dev)])
        parts = [xp.max(xp.reshape(xp.take(padded, xp.asarray(table.reshape(-1), device=dev),
                                           axis=0), table.shape), axis=1)]
        parts += [xp.max(xp.take(a, xp.asarray(at, device=dev), axis=0), keepdims=True)
                  for at in heavy]
        per_row = xp.take(xp.concat(parts), xp.asarray(order, device=dev), axis=0)
        return xp.reshape(xp.take(per_row, xp.asarray(self.pattern.rows, device=dev), axis=0),
                          (-1, 1))

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        return self.layout.finish(outcome, full_output)


#: rows with more nonzeros than this get their own maximum (an arrowhead's dense row
#: would pad the table of every row to n)
_WIDE = 64


def _row_tables(pattern: SparsityPattern) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """For the maximum over each row's nonzeros of the full pattern: a padded table of
    the rows with at most ``_WIDE`` nonzeros (positions, ``nnz`` = padding), the positions
    of each wider row, and the permutation from [narrow rows, wide rows] to row order."""
    n = pattern.shape[0]
    counts = np.bincount(pattern.rows, minlength=n)
    wide = np.flatnonzero(counts > _WIDE)
    narrow = np.flatnonzero(counts <= _WIDE)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)  # row-major
    slot = np.arange(int(counts[narrow].max(initial=0)))
    table = np.where(slot < counts[narrow, None], starts[narrow, None] + slot, pattern.nnz)
    heavy = [np.arange(starts[r], starts[r] + counts[r]) for r in wide.tolist()]
    order = np.empty(n, dtype=np.int64)
    order[np.concatenate([narrow, wide])] = np.arange(n)
    return table.astype(np.int64), heavy, order
