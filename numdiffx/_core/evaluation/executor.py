"""Evaluating perturbed points on an executor (``concurrent.futures``, ``dask.distributed``).

The executor is duck-typed: anything with ``submit(fn, *args)`` returning futures with
``result()`` works -- a ``ThreadPoolExecutor``, a ``ProcessPoolExecutor`` or a
``dask.distributed.Client``. This module never imports dask; dask is the distributed
engine, numdiffx only maps its sub-batches of points over it and gathers them in order.

:class:`ExecutorEvaluator` wraps the local evaluator: each task rebuilds a plain local
:class:`~numdiffx._core.evaluation.evaluator.Evaluator` from its picklable spec on the
worker and calls it on its sub-batch, so a point is evaluated by exactly the code that
evaluates it locally (with evaluation="loop", the default on numpy, the results are bit
for bit identical; a batched task carries and checks its own sentinel row). With a
process-based executor the task (f, the non-differentiated arguments, the points) is
pickled: ``ProcessPoolExecutor`` uses ``pickle`` and needs a module-level f; dask uses
``cloudpickle``, so lambdas and closures work there.
"""

from __future__ import annotations

import math
import os
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from numdiffx.backends import to_host

from .evaluator import Evaluator, EvaluatorSpec
from .progress import Progress

__all__ = ["EvaluationError", "ExecutorEvaluator", "check_executor"]

#: Sub-batches per worker by default: a few, so that uneven tasks balance out.
TASKS_PER_WORKER = 4


class EvaluationError(RuntimeError):
    """A task evaluating ``f`` on an executor failed; names the points and the cause.

    The original exception is chained (``__cause__``). No partial result is returned;
    with ``checkpoint=`` every task that finished is on record, and the message says how
    many evaluations are saved and how to resume.
    """


def check_executor(executor: object, retries: object) -> None:
    """TypeError/ValueError at the boundary for a bad ``executor=`` or ``retries=``."""
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"executor must have a submit(fn, *args) method returning futures (e.g. a "
            f"concurrent.futures.ThreadPoolExecutor or a dask.distributed.Client); got a "
            f"{type(executor).__name__}.")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative int (resubmissions of a failed task); "
                         f"got {retries!r}.")


def n_workers(executor: Any) -> int:
    """Workers (threads) of the executor: dask's ``nthreads()``, else ``_max_workers``."""
    nthreads = getattr(executor, "nthreads", None)
    if callable(nthreads):
        try:
            counts = nthreads()
            return max(1, int(sum(counts.values()) if isinstance(counts, dict) else counts))
        except Exception:  # noqa: BLE001 - an unknown executor; fall through
            pass
    count = getattr(executor, "_max_workers", None)
    if isinstance(count, int) and count > 0:
        return count
    return os.cpu_count() or 1


@dataclass(frozen=True)
class _Task:
    """What a worker needs to evaluate f on a sub-batch of flat points (picklable)."""

    spec: EvaluatorSpec
    out_shape: tuple[int, ...]
    x0: Any
    f0: Any
    narrow_dtype: Any = None  # f's 16-bit dtype, whose values are widened (see Evaluator)


def run_task(task: _Task, points: Any, attempt: int = 0) -> Any:
    """Evaluate f at every row of ``points`` on the worker with a local evaluator; (m, M).

    ``attempt`` only makes each resubmission a distinct task (dask caches by arguments).
    """
    from array_api_compat import array_namespace, device

    from numdiffx.backends import backend_for

    local = Evaluator(task.spec, backend_for(points), array_namespace(points))
    local.out_shape, local.x0, local.f0 = task.out_shape, task.x0, task.f0
    local.device = device(points)
    local.out_dtype, local.narrow_dtype = task.f0.dtype, task.narrow_dtype
    local.progress = Progress(False)  # the client shows the progress, not the workers
    return local(points)


class ExecutorEvaluator(Evaluator):
    """An evaluator whose perturbed points are evaluated as tasks on an executor.

    f(x) is evaluated here; every later call splits its points into sub-batches of
    ``task_size`` points (default: ``TASKS_PER_WORKER`` per worker), submits one task per
    sub-batch and takes the results as they complete (committed to the checkpoint's
    record at once, when there is one), assembled in order. A failing task is resubmitted
    up to ``retries`` times, then raises :class:`EvaluationError` naming its points;
    outstanding tasks are cancelled. With a record, points (loop) or tasks (batched) on
    record are not submitted again.
    """

    def __init__(self, spec: EvaluatorSpec, backend: Any, xp: Any, executor: Any,
                 task_size: int | None, retries: int) -> None:
        super().__init__(spec, backend, xp)
        self.executor: Any = executor
        self.task_size, self.retries = task_size, retries

    def __call__(self, points: Any, *, with_sentinel: bool = False) -> Any:
        xp = self.xp
        if with_sentinel:  # each batched task carries (and checks) its own sentinel row
            points = points[:-1, ...]
        m = points.shape[0]
        task = _Task(self.spec, self.out_shape, self.x0, self.f0, self.narrow_dtype)
        rows, keys, parts = self._units(points)
        size = self.task_size or max(1, math.ceil(len(rows) / (TASKS_PER_WORKER
                                                               * n_workers(self.executor))))
        bounds: Sequence[tuple[int, int]] = [(a, min(a + size, len(rows)))
                                             for a in range(0, len(rows), size)]
        if keys is not None and self.batched:  # a batched task is one unit of the record
            bounds, keys = self._missing_tasks(points, bounds, parts)
        chunks = [points[rows[a]:rows[b - 1] + 1, ...] if rows[b - 1] - rows[a] == b - a - 1
                  else xp.take(points, xp.asarray(rows[a:b], device=self.device), axis=0)
                  for a, b in bounds]
        self._gather(task, chunks, bounds, rows, keys, parts)
        # a batched task checked its own sentinel; stencils that use f(x) subtract f(x)
        self.last_sentinel = None
        self.nfev += m + (math.ceil(m / size) if self.batched else 0)  # a sentinel per task
        if not parts:
            return xp.zeros((0, math.prod(self.out_shape)), dtype=self.out_dtype,
                            device=self.device)
        order = sorted(parts)
        out = [parts[r] for r in order]
        return xp.reshape(out[0] if len(out) == 1 else xp.concat(out, axis=0), (m, -1))

    def _units(self, points: Any) -> tuple[list[int], list[bytes] | None, dict[int, Any]]:
        """The rows to evaluate, their record keys (loop: one a point) and the pieces of the
        result already known, by first row: with a record in loop mode, the points on
        record are not evaluated again."""
        m, record = points.shape[0], self.record
        if record is None:
            return list(range(m)), None, {}
        if self.batched:
            return list(range(m)), [], {}
        host = to_host(points)
        rows, keys, parts = [], [], {}
        for r in range(m):
            key = record.key("point", "loop", host[r:r + 1])
            kept = record.get(key)
            if kept is None:
                rows.append(r)
                keys.append(key)
            else:
                parts[r] = self.restore(kept, count=False)
        if parts and self.progress is not None:
            self.progress.add(len(parts), restored=True)
        return rows, keys, parts

    def _missing_tasks(self, points: Any, bounds: Sequence[tuple[int, int]],
                       parts: dict[int, Any]) -> tuple[list[tuple[int, int]], list[bytes]]:
        """The batched tasks not on record (those on record go into ``parts``)."""
        record, missing, keys = self.record, [], []
        for a, b in bounds:
            key = record.key("task", self.mode, to_host(points[a:b, ...]))
            kept = record.get(key)
            if kept is None:
                missing.append((a, b))
                keys.append(key)
            else:
                parts[a] = self.restore(kept, count=False)
                if self.progress is not None:
                    self.progress.add(b - a, restored=True)
        return missing, keys

    def _gather(self, task: _Task, chunks: list[Any], bounds: Sequence[tuple[int, int]],
                rows: list[int], keys: list[bytes] | None, parts: dict[int, Any]) -> None:
        """Submit every chunk, take the results as they complete (committing each to the
        record), resubmit failures up to ``retries`` times, cancel the rest on an error."""
        xp, record = self.xp, self.record
        done: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        futures: list[Any] = [None] * len(chunks)
        attempts = [0] * len(chunks)
        in_order = False

        def submit(i: int) -> None:
            nonlocal in_order
            extra = (attempts[i],) if attempts[i] else ()
            futures[i] = future = self.executor.submit(run_task, task, chunks[i], *extra)
            callback = getattr(future, "add_done_callback", None)
            if callable(callback):
                callback(lambda f, i=i: done.put((i, f)))
            else:  # an executor without callbacks: its results in submission order
                in_order = True

        def finish(i: int, value: Any) -> None:
            a, b = bounds[i]
            y = xp.reshape(xp.asarray(value, device=self.device), (b - a, -1))
            if keys is not None and not self.batched:  # a point is a unit: commit each
                host = to_host(y)
                for j in range(b - a):
                    record.put(keys[a + j], host[j:j + 1], 1, 1)
                    parts[rows[a + j]] = y[j:j + 1, :]
            else:
                if keys is not None:
                    record.put(keys[i], to_host(y), b - a, b - a + 1)
                parts[rows[a]] = y
            if self.progress is not None:
                self.progress.add(b - a)

        pending = set(range(len(chunks)))
        try:
            for i in range(len(chunks)):
                submit(i)
            while pending:
                if in_order:
                    i = min(pending)
                    future = futures[i]
                else:
                    i, future = done.get()
                    if future is not futures[i] or i not in pending:
                        continue  # a resubmitted task's earlier future
                try:
                    value = future.result()
                except Exception as exc:  # noqa: BLE001 - re-raised below with context
                    if attempts[i] >= self.retries:
                        self._keep_finished(done, futures, pending, finish)
                        raise self._failure(chunks[i], bounds[i], rows, attempts[i], exc
                                            ) from exc
                    attempts[i] += 1
                    submit(i)
                    continue
                pending.discard(i)
                finish(i, value)
        except BaseException:
            for future in futures:
                cancel = getattr(future, "cancel", None)
                if callable(cancel):
                    cancel()
            raise

    def _keep_finished(self, done: Any, futures: list[Any], pending: set[int],
                       finish: Any) -> None:
        """On a failure with a record: commit the tasks that completed meanwhile."""
        if self.record is None:
            return
        for i in sorted(pending):
            future = futures[i]
            ready = getattr(future, "done", None)
            if not (callable(ready) and ready()):
                continue
            try:
                value = future.result()
            except Exception:  # noqa: BLE001 - a failed task has nothing to keep
                continue
            pending.discard(i)
            finish(i, value)

    def _failure(self, chunk: Any, bounds: tuple[int, int], rows: list[int], attempt: int,
                 exc: BaseException) -> EvaluationError:
        tries = f" after {attempt + 1} attempts" if attempt else ""
        where = self._task_words(chunk, rows[bounds[0]], rows[bounds[1] - 1])
        if self.record is not None:
            keep = (f"{self.record.resume_hint()} (fix f, or pass retries= for transient "
                    "failures)")
        else:
            keep = ("No partial Jacobian is returned; fix f (or pass retries= for transient "
                    "failures), and pass checkpoint=PATH to keep finished evaluations across "
                    "a failure")
        return EvaluationError(f"f failed on the executor for {where}{tries}: "
                               f"{type(exc).__name__}: {exc}. {keep}.")

    def _task_words(self, chunk: Any, first: int, last: int) -> str:
        where = f"points {first}..{last} of a chunk"
        try:
            changed = self.xp.any(chunk != self.xp.expand_dims(self.x0, 0), axis=0)
            idx = [int(i) for i in self.xp.nonzero(changed)[0]]
        except Exception:  # noqa: BLE001 - the description must never hide the real error
            return where
        shown = ", ".join(str(i) for i in idx[:12]) + (", ..." if len(idx) > 12 else "")
        return f"{where} (perturbing flat input elements [{shown}])"
