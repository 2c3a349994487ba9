"""Calling the user's f on batches of perturbed flat points: local evaluation modes.

``Evaluator(points)`` evaluates f at every row of ``points`` (m, n) and returns (m, M):

- ``"batched"``: f accepts a leading batch axis (or ``batch_axis``) on every array
  argument (the JacrevFinite contract): all points of a chunk go in ONE call.
- ``"vmap"``: the backend's vmap maps the per-point f over the chunk.
- ``"loop"``: one call per point; works for any f.

Every point f receives is its own contiguous array, never a view into a shared buffer.
Every batched or vmapped call carries the unperturbed x as one extra, last row of the
batch (the *sentinel*): its output must equal f(x) within round-off, else f mixes the
rows of a batch or vmap disagrees with f (under vmap, f(x) is f itself at x: no trace
of the mapped f). Once per computation, the first perturbed point is also evaluated by f
alone and compared with its row: a vmap that
broadcasts one row's value of an operation to every row (torch's ``index_fill`` with a
batched 0-d value) leaves x's row right but every perturbed row wrong. On a mismatch an
explicit mode raises; ``"auto"`` falls back to ``"loop"`` with an
:class:`EvaluationWarning`. ``"auto"`` also falls back, silently, when
vmap cannot trace f at all (``.item()``, numpy calls); the decision is made at every
call of f, for whichever argument is being differentiated.

``checkpoint=`` (:meth:`Evaluator.attach`) commits every evaluation to an SQLite record
as it completes (``record.py``): a point in a loop, a whole call in batched or vmap
mode, and looks each up before f is called. ``progress=`` counts the evaluations for a
:class:`~numdiffx._core.evaluation.progress.Progress` display; a loop without a tracker
(the fast lane's) looks at the clock after its first point, and makes one only when it
may run longer than the display's threshold.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any

import numpy as np
from array_api_compat import device as _device

from numdiffx.backends import to_host

from . import progress as _progress
from .progress import Progress
from .record import identity, open_section

__all__ = ["EVALUATION_MODES", "EvaluationWarning", "Evaluator", "EvaluatorSpec"]

EVALUATION_MODES = ("auto", "batched", "loop", "vmap")


class EvaluationWarning(UserWarning):
    """``evaluation="auto"`` had to leave the backend's vmap for one call per point."""


@dataclass(frozen=True)
class EvaluatorSpec:
    """Everything needed to rebuild an evaluator elsewhere (picklable, for executors)."""

    fun: Callable[..., Any]
    args: tuple[Any, ...]
    variables: tuple[int, ...]  # the argnums laid out one after another in the flat vector
    shapes: tuple[tuple[int, ...], ...]
    mode: str  # as requested: "auto", "batched", "vmap" or "loop"
    batch_axis: int = 0


class Evaluator:
    """Evaluates f at flat points; counts evaluations (points, sentinel rows included)."""

    executor: Any = None  # local evaluation (see executor.ExecutorEvaluator)
    record: Any = None  # the checkpoint's record.Section of this computation, if any
    progress: Any = None  # a progress.Progress counting the evaluations, if any
    watched = False  # whether either is there: one test on a batched call without them

    def __init__(self, spec: EvaluatorSpec, backend: Any, xp: Any) -> None:
        self.spec = spec
        self.fun = spec.fun
        self.args = list(spec.args)
        self.variables = spec.variables
        self.shapes = spec.shapes
        self.sizes = tuple(math.prod(s) for s in spec.shapes)
        self.backend = backend
        self.xp = xp
        self._device: Any = None  # x's device, looked up from x0 when first asked
        self.nfev = 0
        self.batch_axis = k = spec.batch_axis
        # "batched" puts the copies on axis k: replacing it where every differentiated
        # argument has size 1 there, else as a new axis inserted there
        self._replace = k != 0 and all(len(s) > k and s[k] == 1 for s in self.shapes)
        self.out_shape: tuple[int, ...] = ()
        self.out_dtype: Any = None
        #: f's own 16-bit float dtype (float16/bfloat16): its values are widened to float32
        #: as they arrive, so the differences carry only f's own rounding
        self.narrow_dtype: Any = None
        self.x0: Any = None  # the unperturbed flat point
        self.f0: Any = None  # f(x0), flat (M,)
        self.last_sentinel: Any = None  # (1, M) output of the last call's sentinel row
        self._tolerances: tuple[Any, Any] | None = None  # (f0, its sentinel tolerance)
        #: mode "auto" falls back to when the backend's default cannot serve f
        self._fallback = backend.auto_fallback if spec.mode == "auto" else None
        self.mode = backend.default_evaluation if spec.mode == "auto" else spec.mode
        self._call: Callable[..., Any] = self.fun
        # vmap is the library's transformation of an f written for one point, and can be
        # wrong on perturbed rows while right on x (torch's batched index_fill): one
        # perturbed row per computation is compared with f on it alone. A batched f is the
        # user's own vectorised code; the sentinel row (x in every batch) checks it.
        self._spot_checked = self.mode != "vmap"
        if self.mode == "vmap":
            in_axes = tuple(0 if i in self.variables else None for i in range(len(self.args)))
            mapped = backend.vmap(self.fun, in_axes)
            if mapped is None:
                raise ValueError(
                    f"evaluation='vmap' is not available for {backend.name} arrays (the library "
                    "has no vmap); use evaluation='batched' if f accepts a leading batch axis, "
                    "or evaluation='loop'."
                )
            self._call = mapped

    @property
    def device(self) -> Any:
        """x's device (looked up once, when asked: most computations never ask)."""
        if self._device is None and self.x0 is not None:
            self._device = _device(self.x0)
        return self._device

    @device.setter
    def device(self, value: Any) -> None:
        self._device = value

    @property
    def batched(self) -> bool:
        """Whether calls carry many points at once (and a sentinel row)."""
        return self.mode in ("batched", "vmap")

    # -- argument assembly -------------------------------------------------------------
    def _split(self, flat: Any, batch: int | None) -> list[Any]:
        """The differentiated arguments of one point (batch None) or a batch of points."""
        xp, out, start = self.xp, [], 0
        alone = len(self.shapes) == 1
        if alone and batch is not None:  # the batch numdiffx built is the argument itself
            shape = self.shapes[0]
            return [self._place(flat if flat.ndim == len(shape) + 1 and shape == tuple(
                flat.shape[1:]) else xp.reshape(flat, (batch, *shape)), batch)]
        for shape, size in zip(self.shapes, self.sizes):
            piece = flat[..., start:start + size]
            if not alone or batch is None:  # its own contiguous array, not a view
                piece = xp.asarray(piece, copy=True)
            out.append(self._place(xp.reshape(piece, (batch, *shape)) if batch is not None
                                   else xp.reshape(piece, shape), batch))
            start += size
        return out

    def _place(self, a: Any, batch: int | None) -> Any:
        """Move the leading batch axis of ``a`` to ``batch_axis`` (batched mode only)."""
        k = self.batch_axis
        if batch is None or k == 0 or self.mode != "batched":
            return a
        if self._replace:  # drop the size-1 axis k of the element, then put the batch there
            a = self.xp.reshape(a, (batch, *a.shape[1:k + 1], *a.shape[k + 2:]))
        return self.xp.moveaxis(a, 0, k)

    def _from_batched(self, out: Any) -> Any:
        """f's batched output with its batch axis moved back to 0."""
        k = self.batch_axis
        if k == 0 or self.mode != "batched":
            return out
        if out.ndim <= k:
            raise ValueError(f"with batch_axis={k}, f must return an array with the batch on "
                             f"axis {k}; it returned shape {tuple(out.shape)}.")
        moved = self.xp.moveaxis(out, k, 0)
        if self._replace:
            return self.xp.reshape(moved, (moved.shape[0], *moved.shape[1:k + 1], 1,
                                           *moved.shape[k + 1:]))
        return moved

    def _arguments(self, values: list[Any], batch: int | None) -> list[Any]:
        args = list(self.args)
        for i, value in zip(self.variables, values):
            args[i] = value
        if batch is not None and self.mode == "batched":
            xp = self.xp
            for i, a in enumerate(args):
                if i not in self.variables and _is_array(a):
                    a = self.backend.repeated(a, batch, xp)  # a new leading axis
                    args[i] = self._place(a, batch)
        return args

    def _as_output(self, out: Any, where: str, batched: bool) -> Any:
        """f's result as one array; a list/tuple of arrays is stacked (as torch/scipy)."""
        if type(out) is type(self.x0) and self.narrow_dtype is None:  # the usual case
            return self._from_batched(out) if batched else out
        if isinstance(out, (tuple, list)):
            if not out:
                raise TypeError(f"f returned an empty {type(out).__name__} {where}; it must "
                                "return an array (or a list/tuple of arrays to stack).")
            parts = [self._as_output(o, where, batched) for o in out]
            return self.xp.stack(parts, axis=1 if batched else 0)
        if out is None or isinstance(out, dict) or not (_is_array(out) or np.isscalar(out)):
            raise TypeError(
                f"f must return an array; it returned a {type(out).__name__} {where}. "
                "Wrap it so it returns one array, e.g. lambda x: xp.stack(f(x))."
            )
        if self.x0 is None or not isinstance(out, type(self.x0)):
            # a scalar, or another library's array: onto x's device (a traced value
            # is left to its transformation)
            out = self.xp.asarray(out) if self.backend.is_traced(out) else self.xp.asarray(
                out, device=self.device)
        if self.narrow_dtype is not None and out.dtype == self.narrow_dtype:
            out = self.xp.astype(out, self.xp.float32)
        return self._from_batched(out) if batched else out

    def _widen_first(self, f0: Any) -> Any:
        """f(x) widened to float32 when f works in a 16-bit float (sets ``narrow_dtype``)."""
        xp = self.xp
        if f0.dtype == xp.float64 or f0.dtype == xp.float32:  # the usual case
            return f0
        if is_16_bit_float(xp, f0.dtype):
            self.narrow_dtype = f0.dtype
            f0 = xp.astype(f0, xp.float32)
        return f0

    def _apply(self, fun: Callable[..., Any], args: list[Any], where: str) -> Any:
        """``fun(*args)``; an exception from f keeps its type and gains a note naming where."""
        try:
            return fun(*args)
        except Exception as exc:
            hint = ""
            if self.mode == "batched" and where == "at x":
                hint = (" (with evaluation='batched' every array argument has a leading batch "
                        "axis; if f is not vectorised, use evaluation='loop')")
            note = f"numdiffx: raised by f {where} (evaluation={self.mode!r}){hint}."
            if hasattr(exc, "add_note"):  # Python >= 3.11 (PEP 678); 3.10 keeps f's message
                exc.add_note(note)
            raise

    def _where(self, points: Any, rows: Sequence[int]) -> str:
        """Words for the perturbed points ``rows``: which elements moved, by how much."""
        try:
            host = to_host(points)
            x0 = to_host(self.x0)
        except Exception:  # noqa: BLE001 - the description must never hide f's error
            return f"at {len(rows)} perturbed point(s)"
        parts = []
        for r in list(rows)[:3]:
            moved = np.flatnonzero(host[r] != x0)
            words = []
            for j in moved[:3]:
                arg, index = self._locate(int(j))
                step = complex(host[r, j] - x0[j]) if np.iscomplexobj(host) else float(
                    host[r, j] - x0[j])
                words.append(f"args[{arg}]{list(index)} {'+' if str(step)[0] != '-' else ''}"
                             f"{step:.3g}")
            more = f" and {moved.size - 3} more element(s)" if moved.size > 3 else ""
            parts.append(", ".join(words) + more if words else "no element moved")
        if len(rows) > 3:
            parts.append(f"... ({len(rows)} points)")
        return "at the perturbed point moving " + "; ".join(parts)

    def _locate(self, flat: int) -> tuple[int, tuple[int, ...]]:
        """(argnum, index within it) of a flat element."""
        for arg, shape, size in zip(self.variables, self.shapes, self.sizes):
            if flat < size:
                return arg, tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
            flat -= size
        raise IndexError(flat)  # pragma: no cover - callers pass valid indices

    # -- calls -------------------------------------------------------------------------
    def first(self, x_flat: Any) -> Any:
        """f at the unperturbed point; fixes the output shape and dtype. Returns (M,)."""
        self.x0 = x_flat
        if self._fallback is not None and self.mode == "vmap":
            try:
                return self._first(x_flat)
            except Exception:  # noqa: BLE001 - vmap refused f; the fallback re-raises f's own
                self._leave_vmap()
        return self._first(x_flat)

    def known(self, x_flat: Any, f0: Any) -> Any:
        """Use the caller's f(x) (flat, validated); no evaluation."""
        f0 = self._widen_first(f0)
        self.x0, self.f0 = x_flat, f0
        self.out_dtype = f0.dtype
        return f0

    def attach(self, opts: Any) -> None:
        """Record this computation's evaluations in ``opts.checkpoint`` and count them for
        ``opts.progress``; called once f(x) is known (it fingerprints f)."""
        self.progress, self.watched = Progress(opts.progress), True
        if opts.checkpoint is None:
            return
        if self.backend.is_traced(self.x0) or self.backend.is_traced(self.f0):
            raise ValueError("checkpoint= needs values to record, and under jax.jit there are "
                             "none; call the operation outside jit (or drop checkpoint=).")
        self.record = open_section(opts.checkpoint, identity(self, opts), to_host(self.f0))

    def restore(self, kept: tuple[Any, int], count: bool = True) -> Any:
        """A unit read from the record, on x's device (the bits it was stored with);
        ``count``: its evaluations count in ``nfev`` as when it was stored."""
        values, nfev = kept
        if count:
            self.nfev += nfev
        return self.xp.asarray(values, device=self.device)

    def _leave_vmap(self) -> None:
        self.mode, self._call, self._fallback = self._fallback, self.fun, None

    def _first(self, x_flat: Any) -> Any:
        xp = self.xp
        fresh = self.backend.fresh_rows
        with self.backend.no_grad():
            # vmap: f itself at x (the batch's x row is then checked against f, not
            # against vmap; and f alone costs no trace of the mapped f)
            if self.mode == "batched":  # x as a batch of one, its own copy (f may write)
                row = fresh(x_flat, 1) if fresh is not None else xp.expand_dims(
                    xp.asarray(x_flat, copy=True), axis=0)
                args = self._arguments(self._split(row, 1), 1)
                out = self._as_output(self._apply(self._call, args, "at x"), "at x", True)
                if out.ndim < 1 or out.shape[0] != 1:
                    raise ValueError(
                        f"with evaluation={self.mode!r}, f must return an array with a leading "
                        f"batch axis; called on a batch of 1 it returned shape "
                        f"{tuple(out.shape)}. If f is not vectorised, use evaluation='loop'."
                    )
                self.out_shape = tuple(out.shape[1:])
            else:  # its own copy: an f writing into its argument must not move x
                x_copy = xp.asarray(x_flat, copy=True)
                out = self._as_output(self._apply(
                    self.fun, self._arguments(self._split(x_copy, None), None), "at x"),
                    "at x", False)
                self.out_shape = tuple(out.shape)
        out = self._widen_first(out)
        self.out_dtype = out.dtype
        self.nfev += 1
        self.f0 = xp.reshape(out, (-1,))
        return self.f0

    def __call__(self, points: Any, *, with_sentinel: bool = False) -> Any:
        """Evaluate f at each row of ``points`` (m, n); returns (m, M).

        In batched and vmap modes the call carries x as a last, sentinel row; its output
        is kept as ``last_sentinel`` (stencils that use f(x) subtract it: same call, same
        rounding). ``with_sentinel``: the caller built ``points`` with that row already
        (see :meth:`sentinel_point`), so no copy of the batch is made here; the result
        then has m - 1 rows. In loop mode such a row is simply not evaluated."""
        if self.batched:
            try:
                return self._batched(points, with_sentinel)
            except _SentinelMismatch as mismatch:
                if self._fallback is None:
                    raise ValueError(str(mismatch)) from None
                warnings.warn(f"{mismatch} Falling back to evaluation='loop' (one call of f "
                              "per point) for this computation.", EvaluationWarning,
                              stacklevel=4)
                self._leave_vmap()
            except Exception:
                if self._fallback is None:
                    raise
                self._leave_vmap()  # vmap cannot trace f: one call per point, any f
        self.last_sentinel = None
        if self.record is not None:
            return self._recorded_loop(points[:-1, ...] if with_sentinel else points)
        return self._loop(points[:-1, ...] if with_sentinel else points)

    def _recorded_loop(self, points: Any) -> Any:
        """The loop, each point looked up in the record and committed once evaluated."""
        record, rows = self.record, []
        for r in range(points.shape[0]):
            point = points[r:r + 1, ...]
            key = record.key("point", "loop", to_host(point))
            kept = record.get(key)
            if kept is None:
                try:
                    y = self._loop(point)
                except Exception as exc:
                    if hasattr(exc, "add_note"):
                        exc.add_note(f"numdiffx: {record.resume_hint()}.")
                    raise
                record.put(key, to_host(y), 1, 1)
            else:
                y = self.restore(kept)
                if self.progress is not None:
                    self.progress.add(1, restored=True)
            rows.append(y)
        if not rows:
            return self._loop(points)
        return rows[0] if len(rows) == 1 else self.xp.concat(rows, axis=0)

    def _batched(self, points: Any, with_sentinel: bool, watch: bool = True) -> Any:
        xp = self.xp
        if not with_sentinel:
            points = xp.concat([points, xp.expand_dims(self.sentinel_point(points.dtype), 0)],
                               axis=0)
        if self.watched and watch:
            return self._watched_batch(points)
        rows = points.shape[0]
        m = rows - 1
        spot = None
        if not self._spot_checked and m:  # f may write into its batch: keep the row apart
            spot = xp.asarray(points[0, ...], copy=True)
        with self.backend.no_grad():
            out = self._as_output(self._apply(
                self._call, self._arguments(self._split(points, rows), rows),
                f"at a batch of {m} perturbed points and x"), "for a batch", True)
        expected = (rows, *self.out_shape)
        if tuple(out.shape) != expected:
            raise ValueError(
                f"with evaluation={self.mode!r}, f returned shape {tuple(out.shape)} for a "
                f"batch of {m} perturbed points plus x ({rows} rows); expected {expected}. f "
                "must map each batch element independently (or use evaluation='loop')."
            )
        self.nfev += rows
        if out.ndim != 2:
            out = xp.reshape(out, (rows, -1))
        sentinel = out[m:, :]
        self._check_sentinel(sentinel, self.f0, "the unperturbed x carried in the batch (the "
                             "sentinel row)", "f(x) alone")
        self.last_sentinel = sentinel
        values = out[:m, :]
        if spot is not None:  # once per computation: a perturbed row alone vs in the batch
            self._spot_checked = True
            with self.backend.no_grad():  # f itself on the point (vmap: the only mode)
                alone = self._as_output(self._apply(self.fun, self._arguments(
                    self._split(spot, None), None), "at a perturbed point"), "", False)
            self.nfev += 1
            self._check_sentinel(xp.reshape(alone, (1, -1)), xp.reshape(values[0, :], (-1,)),
                                 "the first perturbed point evaluated alone",
                                 "the same point inside the batch")
        return values

    def _watched_batch(self, points: Any) -> Any:
        """A batched call with a record (the whole call, sentinel row included, is one
        unit) and/or a progress tracker."""
        record, progress = self.record, self.progress
        rows = points.shape[0]
        m = rows - 1
        if record is not None:
            key = record.key("call", self.mode, to_host(points))
            kept = record.get(key)
            if kept is not None:
                out = self.restore(kept)
                if kept[1] > rows:  # its first perturbed row was spot-checked when stored
                    self._spot_checked = True
                self.last_sentinel = out[m:, :]
                if progress is not None:
                    progress.add(m, restored=True)
                return out[:m, :]
        before = self.nfev
        values = self._batched(points, True, False)
        if record is not None:
            out = self.xp.concat([values, self.last_sentinel], axis=0)
            record.put(key, to_host(out), m, self.nfev - before)
        if progress is not None:
            progress.add(m)
        return values

    def sentinel_point(self, dtype: Any) -> Any:
        """x itself, in the points' dtype: the sentinel row of batched calls. Complex-step
        points get x + i*eps*|x|: a zero imaginary part can send f down a real code path,
        and Re f is f(x) + O(eps**2)."""
        xp, x0 = self.xp, self.x0
        if dtype == x0.dtype:
            return x0
        eps = float(xp.finfo(x0.dtype).eps)
        tiny = eps * xp.maximum(xp.abs(x0), xp.ones_like(x0))
        return xp.astype(x0, dtype) + xp.astype(tiny, dtype) * 1j

    def _check_sentinel(self, sentinel: Any, f0: Any, what: str, reference: str) -> None:
        """``sentinel`` (1, M) must equal ``f0`` (M,) within round-off: sqrt(eps) of
        ``|f0_i| + max|f0|`` (one subtraction, one comparison, one reduction when it holds)."""
        xp = self.xp
        if f0 is None or self.backend.is_traced(sentinel) or self.backend.is_traced(f0):
            return  # under jit there is no value to compare on the host
        if sentinel.dtype == f0.dtype:  # the usual case: the same bits ((1, M) against (M,))
            same = sentinel == f0
            # the array's own all() where it has one: the array API's wrapper costs several
            # dispatches (torch: ~4x a plain reduction)
            if bool(same.all() if hasattr(same, "all") else xp.all(same)):
                return
        s = xp.reshape(sentinel, (-1,))
        if s.dtype != f0.dtype and xp.isdtype(s.dtype, "complex floating") and not xp.isdtype(
                f0.dtype, "complex floating"):
            s = xp.real(s)  # a complex-step call: Re f(x + i eps|x|) is f(x)
        if bool(xp.all(s == f0)):  # Re of a complex-step sentinel
            return
        with np.errstate(all="ignore"):
            ok = xp.abs(s - f0) <= self._tolerance(f0)
            if bool(xp.all(ok)):
                return
            ok = ok | (~xp.isfinite(s) & ~xp.isfinite(f0))  # NaN where f(x) is NaN: alike
        if bool(xp.all(ok)):
            return
        bad = np.flatnonzero(~to_host(ok))
        i = int(bad[0])
        got, want = to_host(s)[i], to_host(f0)[i]
        cause = ("vmap disagrees with f evaluated on its own (f is not vmap-safe, e.g. an "
                 "in-place or data-dependent operation, or an upstream vmap bug)"
                 if self.mode == "vmap"
                 else "f mixes the rows of the batch (e.g. it normalises or reduces over the "
                 "batch axis) or is not deterministic")
        raise _SentinelMismatch(
            f"evaluation={self.mode!r}: {what} gave {float(np.real(got))!r} at output element "
            f"{i}, but {reference} gave {float(np.real(want))!r} ({bad.size} output element(s) "
            f"differ beyond round-off): {cause}. The Jacobian would be silently wrong; use "
            "evaluation='loop'.")

    def _tolerance(self, f0: Any) -> Any:
        """sqrt(eps) * (|f0_i| + max |f0|) + tiny: round-off of a batch's own rounding."""
        cache = self._tolerances
        if cache is not None and cache[0] is f0:
            return cache[1]
        xp = self.xp
        tiny = float(xp.finfo(f0.dtype).eps) ** 0.5  # finfo of complex64 is float32's
        scale = xp.abs(f0)
        finite = xp.where(xp.isfinite(scale), scale, xp.zeros_like(scale))
        top = xp.max(finite) if scale.shape[0] else 0.0
        tol = tiny * (finite + top) + float(np.finfo(np.float64).tiny)
        self._tolerances = (f0, tol)
        return tol

    def _loop(self, points: Any) -> Any:
        xp = self.xp
        m = points.shape[0]
        rows = []
        # the points run in stretches, the tracker told between them when its due count
        # is reached (no test per point); without a tracker, the first stretch is one
        # point, whose time says whether this loop may run long enough to need one
        progress, told, t0 = self.progress, 0, 0.0
        if progress is None:
            t0, stop = monotonic(), min(m, 1)
        else:
            stop = min(m, max(1, progress.due - progress.done))
        start = 0
        with self.backend.no_grad():
            while start < m:
                for r in range(start, stop):
                    try:
                        out = self._apply(self.fun, self._arguments(
                            self._split(points[r, ...], None), None), "at a perturbed point")
                    except Exception as exc:
                        if hasattr(exc, "add_note"):
                            exc.add_note(f"numdiffx: {self._where(points, [r])}.")
                        raise
                    y = self._as_output(out, "at a perturbed point", False)
                    if tuple(y.shape) != self.out_shape:
                        raise ValueError(
                            f"f returned shape {tuple(y.shape)} at a perturbed point but "
                            f"{self.out_shape} at x; the output shape must not depend on x."
                        )
                    rows.append(xp.reshape(y, (-1,)))
                start = stop
                if start == m:
                    break
                if progress is None and (monotonic() - t0) * m < _progress.THRESHOLD / 2:
                    stop = m  # a short loop: the rest in one stretch, no tracker
                    continue
                progress, stop = self._told(progress, start - told, m - start, t0, start)
                told = start
        self.nfev += m
        if progress is not None and told < m:
            progress.add(m - told)
        return xp.stack(rows, axis=0) if rows else xp.zeros((0, math.prod(self.out_shape)),
                                                            dtype=self.out_dtype,
                                                            device=self.device)

    def _told(self, progress: Any, count: int, left: int, t0: float, start: int
              ) -> tuple[Any, int]:
        """Tell the tracker ``count`` more evaluations (made first when the loop's first
        point says it may run long); returns it and where the next stretch ends."""
        if progress is None:  # a loop that may run past the threshold
            progress = self.progress = Progress(None, t0=t0, done=0, total=left + count)
        due = progress.add(count)
        return progress, min(start + left, start + max(1, due - progress.done))


def is_16_bit_float(xp: Any, dtype: Any) -> bool:
    """float16 or bfloat16: f may run in it, its values are differenced wider."""
    return bool(xp.isdtype(dtype, "real floating")) and int(xp.finfo(dtype).bits) == 16


class _SentinelMismatch(Exception):
    """The sentinel row's output differs from f(x) (internal; becomes an error/warning)."""


def _is_array(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "__array_namespace__") or (
        hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "__array__"))
