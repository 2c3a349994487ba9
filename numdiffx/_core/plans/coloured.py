"""Sparse Jacobian: columns grouped by colour, one group direction per colour.

Entries are the stored nonzeros of the pattern (row-major). All columns of a colour
share no row (Curtis-Powell-Reid), so a colour's difference, divided at each nonzero
by its column's step, gives every nonzero of its columns. The cost is the number of
colours, not ``in.size``; memory is O(nnz).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numdiffx.backends import to_host
from numdiffx.backends.sparse import SparseJacobian, _segment_table, scatter_dense

from ..evaluation.points import Differences, GroupDirection, differences
from ..problem import Problem
from ..result import DiffResult, Status
from ..sparse import SparsityPattern
from ..stencils import AbstractMethod
from .base import AbstractPlan
from .outcome import Outcome
from .shared import NestedPoints, check_dense_fits, f_scale, put

__all__ = ["ColouredPlan"]


class ColouredPlan(AbstractPlan):
    name = "coloured"

    def __init__(self, problem: Problem, method: AbstractMethod, pattern: SparsityPattern, *,
                 sparse_output: bool, chunk_size: int | None, memory_budget: int) -> None:
        self.problem, self.method, self.deriv = problem, method, 1
        self.pattern = pattern
        self.n_entries, self.n_out = pattern.nnz, 1
        self.sparse_output = sparse_output
        self.chunk_size, self.memory_budget = chunk_size, memory_budget
        if not sparse_output:
            check_dense_fits(problem.m_out, problem.n, problem.dtype)
        xp, dev = problem.xp, problem.device
        self._colours = xp.asarray(pattern.colours, device=dev)  # copied once per call
        self._cols = xp.asarray(pattern.cols, device=dev)

    def entry_variables(self) -> np.ndarray:
        return self.pattern.cols

    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        nz = np.arange(self.pattern.nnz) if rows is None else rows
        return self._read(method or self.method, h, nz, None, extras)

    def _read(self, method: AbstractMethod, h: Any, nz: np.ndarray,
              nested: NestedPoints | None, extras: tuple[tuple[float, ...], ...] = ()
              ) -> Differences:
        """Differences of the nonzeros ``nz`` divided by their column's step, (nz, 1).

        Only the columns of ``nz`` move (the others get step 0), by colour: one group
        direction per colour they use. ``nested`` (kept across levels) reuses a colour's
        shared points when every column it moves halved its step exactly; the columns a
        colour moves only ever drop out, and a dropped column's rows are no longer read
        (no other column of its colour has them).
        """
        p, pattern = self.problem, self.pattern
        xp, device = p.xp, p.device
        n, m_out = p.n, p.m_out
        colours = pattern.colours
        cols = pattern.cols[nz]
        moving = np.zeros(n, dtype=bool)
        moving[cols] = True
        used = np.unique(colours[cols])
        h_move = xp.where(xp.asarray(moving, device=device), h, xp.zeros_like(h))
        direction = GroupDirection(method, h_move, self._colours, 0)

        def run(entries: np.ndarray, offs: list[float] | None = None) -> Differences:
            return differences(p.evaluator, p.x_flat, p.f0, [direction],
                               entries.reshape(-1, 1), chunk_size=self.chunk_size,
                               memory_budget=self.memory_budget, offsets=offs, extras=extras)

        if nested is not None and nested.enabled:
            h_host = to_host(h_move).astype(np.float64)
            halved = np.ones(n, dtype=bool) if nested.memo is None else (
                nested.memo == nested.ratio * h_host)
            nests = ~np.isin(used, colours[moving & ~halved])
            nested.memo = h_host
            d = nested.level(used, None, lambda offs, pos: run(used[pos], offs), None,
                             nests=nests)
        else:
            d = run(used)
        position = np.full(int(colours.max(initial=0)) + 1, -1, dtype=np.int64)
        position[used] = np.arange(used.size)
        pick = xp.asarray(position[colours[cols]] * m_out + pattern.rows[nz], device=device)
        h_nz = xp.take(h, xp.asarray(cols, device=device), axis=0)
        lost = h_nz == 0
        safe = xp.where(lost, xp.ones_like(h_nz), h_nz)

        def read(a: Any) -> Any:
            return xp.take(xp.reshape(a, (-1,)), pick, axis=0)

        value = read(d.values) / safe ** method.deriv
        st = xp.where(lost, xp.asarray(int(Status.STEP_TOO_SMALL), dtype=xp.int8,
                                       device=device),
                      read(d.status))
        ex = [xp.expand_dims(read(e), 1) for e in d.extras]
        return Differences(xp.expand_dims(value, 1), xp.expand_dims(st, 1), ex)

    def level(self, h: Any, rows: np.ndarray, methods: list[AbstractMethod],
              entry_group: np.ndarray, nested: list[Any]) -> Differences:
        p = self.problem
        xp, device = p.xp, p.device
        vals = xp.full((rows.shape[0],), np.nan, dtype=p.dtype, device=device)
        stat = xp.full((rows.shape[0],), int(Status.NON_FINITE), dtype=xp.int8, device=device)
        for g, m in enumerate(methods):
            mine = np.flatnonzero(entry_group[rows] == g)
            if not mine.size:
                continue
            d = self._read(m, h, rows[mine], nested[g])
            vals = put(xp, vals, mine, d.values[:, 0])
            stat = put(xp, stat, mine, d.status[:, 0])
        return Differences(xp.expand_dims(vals, 1), xp.expand_dims(stat, 1))

    def f_scale(self) -> Any:
        p = self.problem
        xp = p.xp
        rows = xp.asarray(self.pattern.rows, device=p.device)
        return xp.expand_dims(xp.take(f_scale(xp, p.f0), rows, axis=0), 1)

    def output_scale(self, values: Any) -> Any:
        """The largest nonzero of each entry's row: a gather of each row's nonzeros
        (host-built table, so it also works under jit), a max, and back per entry."""
        p, pattern = self.problem, self.pattern
        xp = p.xp
        a = xp.abs(values[:, 0])
        a = xp.where(xp.isfinite(a), a, xp.zeros_like(a))
        table = _segment_table(pattern.rows, p.m_out)  # (M, width), nnz = padding
        if table.shape[1] == 0:
            return xp.zeros_like(values)
        padded = xp.concat([a, xp.zeros((1,), dtype=a.dtype, device=p.device)])
        per_row = xp.max(xp.reshape(xp.take(padded, xp.asarray(
            table.reshape(-1), device=p.device), axis=0), table.shape), axis=1)
        return xp.reshape(xp.take(per_row, xp.asarray(pattern.rows, device=p.device), axis=0),
                          (-1, 1))

    def f0_entries(self) -> Any:
        p = self.problem
        rows = p.xp.asarray(self.pattern.rows, device=p.device)
        return p.xp.expand_dims(p.xp.take(p.f0, rows, axis=0), 1)

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        p, pattern = self.problem, self.pattern
        xp, dev = p.xp, p.device
        data = xp.reshape(outcome.value, (-1,))
        shape = (p.m_out, p.n)
        if self.sparse_output:
            rows = xp.asarray(pattern.rows, device=dev)
            value = p.backend.to_sparse(rows, self._cols, data, shape, xp)
            if value is None:
                value = SparseJacobian(rows, self._cols, data, shape)
        else:
            dense = scatter_dense(xp, pattern.rows, pattern.cols, data, shape, dev)
            value = xp.reshape(dense, (*p.out_shape, *p.shapes[0]))
        if not full_output:
            return value
        def flat(a: Any) -> Any:
            return None if a is None else xp.reshape(a, (-1,))

        step = flat(outcome.step) if outcome.per_entry_step else xp.reshape(outcome.step,
                                                                            p.shapes[0])
        return DiffResult(value=value, error=flat(outcome.error), step=step, nfev=p.nfev,
                          status=flat(outcome.status))
