"""Evaluating perturbed points on an executor (``concurrent.futures``, ``dask.distributed``).

The executor is duck-typed: anything with ``submit(fn, *args)`` returning futures with
``result()`` works -- a ``ThreadPoolExecutor``, a ``ProcessPoolExecutor`` or a
``dask.distributed.Client``. This module never imports dask; dask is the distributed
engine, numdiffx only maps its sub-batches of points over it and gathers them in order.

Each task rebuilds a plain local :class:`~numdiffx._core.engine.Evaluator` on the worker
and calls it on its sub-batch, so a point is evaluated by exactly the code that evaluates
it locally and the results are bit-for-bit identical. With a process-based executor the
task (f, the non-differentiated arguments, the points) is pickled: ``ProcessPoolExecutor``
uses ``pickle`` and needs a module-level f; dask uses ``cloudpickle``, so lambdas and
closures work there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EvaluationError", "check_executor", "map_points"]

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
class PointTask:
    """What a worker needs to evaluate f on a sub-batch of flat points (picklable)."""

    fun: Callable[..., Any]
    args: tuple[Any, ...]
    variables: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...]
    mode: str
    batch_axis: int
    out_shape: tuple[int, ...]


def run_task(task: PointTask, points: Any, attempt: int = 0) -> Any:
    """Evaluate f at every row of ``points`` on the worker; returns (m, M).

    ``attempt`` only makes each resubmission a distinct task (dask caches by arguments).
    """
    from array_api_compat import array_namespace

    from numdiffx.backends import backend_for

    from .engine import Evaluator

    evaluator = Evaluator(task.fun, task.args, task.variables, task.shapes, task.mode,
                          backend_for(points), array_namespace(points), task.batch_axis)
    evaluator.out_shape = task.out_shape
    return evaluator(points)


def _describe(xp: Any, points: Any, x0: Any, start: int, stop: int, total: int) -> str:
    where = f"points {start}..{stop - 1} of a chunk of {total}"
    if x0 is None:
        return where
    try:
        changed = xp.any(points[start:stop, ...] != xp.expand_dims(x0, axis=0), axis=0)
        idx = [int(i) for i in xp.nonzero(changed)[0]]
    except Exception:  # noqa: BLE001 - the description must never hide the real error
        return where
    shown = ", ".join(str(i) for i in idx[:12]) + (", ..." if len(idx) > 12 else "")
    return f"{where} (perturbing flat input elements [{shown}])"


def map_points(executor: Any, task: PointTask, xp: Any, points: Any, *,
               chunk_size: int | None, retries: int, x0: Any) -> Any:
    """Split ``points`` (m, n) into sub-batches, evaluate them on ``executor``, gather.

    Sub-batches hold ``chunk_size`` points (default: ``TASKS_PER_WORKER`` per worker).
    A failing sub-batch is resubmitted up to ``retries`` times, then raises
    :class:`EvaluationError` naming its points; outstanding tasks are cancelled.
    """
    m = points.shape[0]
    size = chunk_size or max(1, math.ceil(m / (TASKS_PER_WORKER * n_workers(executor))))
    bounds: Sequence[tuple[int, int]] = [(a, min(a + size, m)) for a in range(0, m, size)]
    futures = [executor.submit(run_task, task, points[a:b, ...]) for a, b in bounds]
    out = []
    try:
        for i, ((a, b), future) in enumerate(zip(bounds, futures)):
            attempt = 0
            while True:
                try:
                    out.append(xp.asarray(future.result()))
                    break
                except Exception as exc:  # noqa: BLE001 - re-raised below with its context
                    if attempt >= retries:
                        tries = f" after {attempt + 1} attempts" if attempt else ""
                        raise EvaluationError(
                            f"f failed on the executor for {_describe(xp, points, x0, a, b, m)}"
                            f"{tries}: {type(exc).__name__}: {exc}. No partial Jacobian is "
                            f"returned; fix f (or pass retries= for transient failures)."
                        ) from exc
                    attempt += 1
                    future = executor.submit(run_task, task, points[a:b, ...], attempt)
                    futures[i] = future
    except BaseException:
        for future in futures:
            cancel = getattr(future, "cancel", None)
            if callable(cancel):
                cancel()
        raise
    return out[0] if len(out) == 1 else xp.concat(out, axis=0)
