"""The checker's own loop over the columns of a numerical Jacobian block.

A check differences every element of every checked input, one at a time, and calls f
once per point (``evaluation="loop"``): for a small f the engine's per-point bookkeeping
(its evaluator, the wrapper that rebuilds f's arguments and validates each output, the
estimate and statuses of ``full_output``) cost several times f itself, where
``torch.autograd.gradcheck`` perturbs an element in place and calls f. This loop makes
the same points and the same arithmetic as :func:`numdiffx.jacobian` does for the
central difference under a one-step rule -- the rule's steps made representable, the
point ``x + o h`` added elementwise in x's dtype, ``(f(x + h) - f(x - h)) / (h / w)`` in
the outputs' dtype -- so its values and steps are the engine's, bit for bit (tested), and
the statuses are those the checker keeps for them (SUCCESS: a one-step estimate is not
used, see :func:`~numdiffx.checks._numerical.numerical_jacobian`).

Whatever only the engine handles -- another stencil or rule, a complex input, a value of
f that is not finite (statuses, one-sided retries), an output whose shape or dtype
changes, f raising, a checkpoint or a progress callable, a block over 256 MiB -- returns
None, and the caller runs the engine, which computes and reports it as before. An element
of x at +-inf is not moved (h = 0: f is called at x there); the caller sets its column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from numdiffx._core.evaluation.points import representable_steps
from numdiffx._core.evaluation.progress import Progress
from numdiffx._core.stencils import AbstractMethod, Stencil
from numdiffx._core.validation import array_kind
from numdiffx.backends.autodiff import to_host
from numdiffx.steps import AbstractStepRule, fixed, relative

from ._problem import Problem, Slot, real_view

__all__ = ["lean_columns"]

#: Columns whose perturbed points are built in one batch (2 * C * n values of x's dtype).
CHUNK = 64
#: The most bytes this loop's two (n, rows) float64 buffers may take; above it the engine.
BUFFER_BYTES = 2**28


class _Refer(Exception):
    """The loop met what only the engine handles: it computes the block instead."""


def _opposite(method: AbstractMethod) -> tuple[float, float, float] | None:
    """(o0, o1, w1) of a two-point stencil with opposite power-of-two weights and no point
    at x (the central difference), else None: the only stencil this loop computes."""
    if type(method) is not Stencil or method.deriv != 1 or len(method.points) != 2:
        return None
    (o0, w0), (o1, w1) = ((float(o), float(w)) for o, w in method.points)
    if o0 == 0 or o1 == 0 or w0 != -w1 or w1 == 0 or math.frexp(abs(w1))[0] != 0.5:
        return None
    return o0, o1, w1


def lean_columns(p: Problem, s: Slot, outputs: Sequence[Slot], method: AbstractMethod,
                 rule: AbstractStepRule, progress: object = None
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """(values (rows, n) float64, steps (n,) float64) of input ``s``'s block, as
    ``numdiffx.jacobian(..., evaluation="loop")`` gives them; None where the engine must
    compute it (see the module)."""
    stencil = _opposite(method)
    if (stencil is None or type(rule) not in (fixed, relative) or s.is_complex or not outputs
            or progress not in (None, False)
            or not all(np.all(np.isfinite(p.f0[o.index])) for o in outputs)):
        return None
    if 2 * 8 * s.size * sum(o.size for o in outputs) > BUFFER_BYTES:
        return None  # the engine's chunks and its memory check (a clear error)
    x = real_view(p.args[s.index])
    try:
        xp, backend = array_kind(x)
    except TypeError:
        return None
    if backend.fresh_rows is None or backend.eager_dispatch or not (
            x.dtype == xp.float64 or x.dtype == xp.float32):
        return None
    x_flat = backend.unlinked(x)
    assert isinstance(rule, (fixed, relative))
    o0, o1, w1 = stencil
    with np.errstate(all="ignore"):
        h = rule.nominal(abs(x_flat), xp=xp, dtype=x_flat.dtype, method=method)
        h = representable_steps(xp, x_flat, h, silenced=True)
        infinite = xp.isinf(x_flat)
        moved = None
        if bool(xp.any(infinite)):  # not perturbed (the caller's convention): h = 0 there
            h = xp.where(infinite, xp.zeros_like(h), h)
            moved = ~infinite
        deltas = [h if o == 1.0 else h * o for o in (o0, o1)]
    try:
        ys = _evaluate(p, s, outputs, x_flat, deltas, backend, progress)
    except _Refer:
        return None
    with np.errstate(all="ignore"):
        acc = backend.divide(ys[1] - ys[0], (h / w1).reshape(-1, 1))
        total = acc.sum() if moved is None else acc[moved].sum()
    if not math.isfinite(float(total)):
        return None  # NaN/inf or a vanished step: the engine's statuses and retries
    n = x_flat.shape[0]
    value = to_host(acc).T.reshape(-1, n).astype(np.float64)
    return value, to_host(h).reshape(-1).astype(np.float64)


def _evaluate(p: Problem, s: Slot, outputs: Sequence[Slot], x_flat: Any, deltas: list[Any],
              backend: Any, progress: object) -> list[Any]:
    """f's checked outputs (real view, concatenated, in the dtype the engine's wrapper
    gives them) at ``x + delta_j e_j`` for each delta, element j in order, the points of
    element j one after the other (as the engine's loop); rows (n, M) per delta."""
    n = x_flat.shape[0]
    ks = [o.index for o in outputs]
    bounds = np.cumsum([0] + [o.size for o in outputs]).tolist()
    count = len(p.structure)
    args = list(p.args)
    ys: list[Any] = []
    kinds: list[tuple[Any, Any]] = []  # each checked output's (shape, dtype) at x
    tracker = Progress(progress, total=len(deltas) * n)
    with backend.no_grad():
        for start in range(0, n, CHUNK):
            c = min(CHUNK, n - start)
            points = []
            for d in deltas:
                batch = backend.fresh_rows(x_flat, c)
                flat = batch.reshape(-1)  # fresh and contiguous: a view
                diagonal = flat[start:start + (n + 1) * (c - 1) + 1:n + 1]
                diagonal += d[start:start + c]  # x_j + delta_j, in place, in x's dtype
                points.append(list(batch.reshape((c, *s.shape))))  # views of the rows
            got: list[list[list[Any]]] = [[[] for _ in ks] for _ in deltas]
            for r in range(c):
                for which, rows in enumerate(points):
                    args[s.index] = rows[r]
                    try:
                        out = p.f(*args)
                    except Exception:
                        raise _Refer from None  # the engine raises it, with its notes
                    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
                    if len(outs) != count:
                        raise _Refer
                    if not kinds:
                        kinds = _kinds(p, outs, ks)
                    for pos, (k, (shape, dtype)) in enumerate(zip(ks, kinds)):
                        o = outs[k]
                        if isinstance(o, np.generic):  # np.sum's: a 0-d array
                            o = np.asarray(o)
                        if getattr(o, "shape", None) != shape or o.dtype != dtype:
                            raise _Refer  # the engine's message names the change
                        got[which][pos].append(o)
            if not ys:
                ys = _buffers(got[0], outputs, points[0][0], n, bounds[-1], len(deltas))
            for y, per_output in zip(ys, got):
                for o, values, a, b in zip(outputs, per_output, bounds, bounds[1:]):
                    stacked = _stack(values, o.is_complex)
                    y[start:start + c, a:b] = stacked
            tracker.add(len(deltas) * c)
    return ys


def _kinds(p: Problem, outs: Sequence[Any], ks: Sequence[int]) -> list[tuple[Any, Any]]:
    """(shape, dtype) of each checked output at the first point, if they are f's at x."""
    kinds = []
    for k in ks:
        o = np.asarray(outs[k]) if isinstance(outs[k], np.generic) else outs[k]
        shape = getattr(o, "shape", None)
        if shape is None or (
                (tuple(int(v) for v in shape), str(o.dtype)) != p.structure[k]):
            raise _Refer  # non-arrays, changed outputs: the engine
        kinds.append((shape, o.dtype))
    return kinds


def _stack(values: Sequence[Any], is_complex: bool) -> Any:
    """(points, real-view size) of one output's values at the points."""
    xp, _ = array_kind(values[0])
    if is_complex:
        return xp.stack([real_view(v) for v in values], axis=0)
    return xp.reshape(xp.stack(values, axis=0), (len(values), -1))


def _buffers(values: Sequence[Sequence[Any]], outputs: Sequence[Slot], point: Any, n: int,
             m: int, count: int) -> list[Any]:
    """One (n, m) array per delta, of the dtype the engine's wrapper concatenates f's
    outputs in: the widest of the outputs' real views and the perturbed input."""
    xp, _ = array_kind(point)
    pieces = [real_view(v[0]) if o.is_complex else v[0] for v, o in zip(values, outputs)]
    wide = xp.result_type(*pieces, point)
    return [xp.empty((n, m), dtype=wide, device=getattr(point, "device", None))
            for _ in range(count)]
