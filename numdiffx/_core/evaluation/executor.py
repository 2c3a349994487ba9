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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .evaluator import Evaluator, EvaluatorSpec

__all__ = ["EvaluationError", "ExecutorEvaluator", "check_executor"]

#: Sub-batches per worker by default: a few, so that uneven tasks balance out.
TASKS_PER_WORKER = 4


class EvaluationError(RuntimeError):
    """A task evaluating ``f`` on an executor failed; names the points and the cause.

    The original exception is chained (``__cause__``). No partial result is returned.
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
    return local(points)


class ExecutorEvaluator(Evaluator):
    """An evaluator whose perturbed points are evaluated as tasks on an executor.

    f(x) is evaluated here; every later call splits its points into sub-batches of
    ``task_size`` points (default: ``TASKS_PER_WORKER`` per worker), submits one task per
    sub-batch and gathers them in order. A failing task is resubmitted up to ``retries``
    times, then raises :class:`EvaluationError` naming its points; outstanding tasks are
    cancelled.
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
        size = self.task_size or max(1, math.ceil(m / (TASKS_PER_WORKER
                                                        * n_workers(self.executor))))
        bounds: Sequence[tuple[int, int]] = [(a, min(a + size, m)) for a in range(0, m, size)]
        futures = [self.executor.submit(run_task, task, points[a:b, ...]) for a, b in bounds]
        out = []
        try:
            for i, ((a, b), future) in enumerate(zip(bounds, futures)):
                attempt = 0
                while True:
                    try:
                        out.append(xp.asarray(future.result(), device=self.device))
                        break
                    except Exception as exc:  # noqa: BLE001 - re-raised below with context
                        if attempt >= self.retries:
                            tries = f" after {attempt + 1} attempts" if attempt else ""
                            raise EvaluationError(
                                f"f failed on the executor for {self._task_words(points, a, b)}"
                                f"{tries}: {type(exc).__name__}: {exc}. No partial Jacobian is "
                                f"returned; fix f (or pass retries= for transient failures)."
                            ) from exc
                        attempt += 1
                        future = self.executor.submit(run_task, task, points[a:b, ...], attempt)
                        futures[i] = future
        except BaseException:
            for future in futures:
                cancel = getattr(future, "cancel", None)
                if callable(cancel):
                    cancel()
            raise
        # a batched task checked its own sentinel; stencils that use f(x) subtract f(x)
        self.last_sentinel = None
        self.nfev += m + (len(bounds) if self.batched else 0)  # a sentinel row per task
        if not out:
            return xp.zeros((0, math.prod(self.out_shape)), dtype=self.out_dtype,
                            device=self.device)
        return xp.reshape(out[0] if len(out) == 1 else xp.concat(out, axis=0), (m, -1))

    def _task_words(self, points: Any, start: int, stop: int) -> str:
        where = f"points {start}..{stop - 1} of a chunk of {points.shape[0]}"
        try:
            changed = self.xp.any(points[start:stop, ...] != self.xp.expand_dims(self.x0, 0),
                                  axis=0)
            idx = [int(i) for i in self.xp.nonzero(changed)[0]]
        except Exception:  # noqa: BLE001 - the description must never hide the real error
            return where
        shown = ", ".join(str(i) for i in idx[:12]) + (", ..." if len(idx) > 12 else "")
        return f"{where} (perturbing flat input elements [{shown}])"
