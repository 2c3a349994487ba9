"""The finite-difference engine, written once against the array namespace ``xp``.

Every operation reduces to *entries*: an entry is a derivative along one or two
directions, each a basis vector ``e_i`` (with a per-element step ``h_i``) or a given
vector ``v`` (with a scalar step ``t``). For an entry with directions ``d1, d2`` and
stencils ``s1, s2`` the estimate is::

    sum_{k,l} w1_k w2_l f(x + o1_k h1 d1 + o2_l h2 d2) / (h1**q1 h2**q2)

Jacobians use one basis direction, Hessian diagonals one basis direction with a
second-derivative stencil, Hessian off-diagonals two basis directions, JVPs one
vector direction and HVPs a basis and a vector direction. Entries are processed in
chunks: each chunk builds its perturbed inputs and makes ONE call to the evaluator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .result import Status
from .stencils import AbstractMethod, ComplexStep, Stencil

__all__ = ["DEFAULT_MEMORY_BUDGET", "BasisDirection", "Evaluator", "GroupDirection",
           "VectorDirection",
           "differences", "method_points"]

#: Bytes of perturbed inputs plus outputs held at once by default (256 MiB).
DEFAULT_MEMORY_BUDGET = 256 * 2**20

EVALUATION_MODES = ("auto", "batched", "loop", "vmap")


def method_points(method: AbstractMethod) -> tuple[tuple[complex | float, float | complex], ...]:
    """(offset, weight) pairs of a method; the complex step is offset i, weight -i."""
    if isinstance(method, ComplexStep):
        return ((1j, -1j),)
    assert isinstance(method, Stencil)
    return tuple(zip(method.float_offsets, method.float_weights))


@dataclass(frozen=True)
class BasisDirection:
    """Perturb element ``i`` of the flat input by ``offset * h[i]`` (entry-specific i)."""

    method: AbstractMethod
    h: Any  # (n,) steps actually used
    column: int  # which column of the entries table gives i


@dataclass(frozen=True)
class VectorDirection:
    """Perturb the whole flat input by ``offset * t * v``."""

    method: AbstractMethod
    t: Any  # 0-d step
    v: Any  # (n,) direction


@dataclass(frozen=True)
class GroupDirection:
    """Perturb every element ``j`` of one colour at once, each by ``offset * h[j]``.

    The entry's table column gives the colour; ``colour`` (n,) maps elements to colours.
    No division happens in the engine: the caller divides each structurally nonzero
    ``(row, column)`` by its own ``h[column]``, which is valid because no two columns of
    a colour share a row (Curtis-Powell-Reid).
    """

    method: AbstractMethod
    h: Any  # (n,) steps actually used
    colour: Any  # (n,) int colour of each element, on the device
    column: int


class Evaluator:
    """Calls the user's f on batches of perturbed flat inputs; counts evaluations.

    ``variables`` are the argnums being differentiated, laid out one after another in
    the flat vector (``sizes`` and ``shapes``). Modes:

    - ``"batched"``: f accepts a leading batch axis on every array argument (the
      JacrevFinite contract); all points of a chunk go in ONE call.
    - ``"vmap"``: the backend's vmap maps the per-sample f over the chunk.
    - ``"loop"``: one call per point; works for any f.
    """

    def __init__(self, fun: Callable[..., Any], args: Sequence[Any], variables: Sequence[int],
                 shapes: Sequence[tuple[int, ...]], mode: str, backend: Any, xp: Any,
                 batch_axis: int = 0, *, executor: Any = None, task_size: int | None = None,
                 retries: int = 0) -> None:
        self.fun = fun
        #: with an executor, each call's points are split into sub-batches of task_size
        #: and evaluated as tasks there (see distributed.py); None evaluates here
        self.executor, self.task_size, self.retries = executor, task_size, retries
        self._x0: Any = None
        self.args = list(args)
        self.variables = tuple(variables)
        self.shapes = tuple(shapes)
        self.sizes = tuple(math.prod(s) for s in shapes)
        self.backend = backend
        self.xp = xp
        self.nfev = 0
        # "batched" puts the copies on axis batch_axis: replacing it where every
        # differentiated argument has size 1 there, else as a new axis inserted there
        self.batch_axis = batch_axis
        self._replace = batch_axis != 0 and all(
            len(s) > batch_axis and s[batch_axis] == 1 for s in self.shapes)
        self.out_shape: tuple[int, ...] = ()
        self.out_dtype: Any = None
        #: mode to retry with if "auto"'s default cannot trace f (backend's rule)
        self._fallback = getattr(backend, "auto_fallback", None) if mode == "auto" else None
        if mode == "auto":
            mode = backend.default_evaluation
        self.mode = mode
        self._call: Callable[..., Any] = fun
        if mode == "vmap":
            in_axes = tuple(0 if i in self.variables else None for i in range(len(args)))
            mapped = backend.vmap(fun, in_axes)
            if mapped is None:
                raise ValueError(
                    f"evaluation='vmap' is not available for {backend.name} arrays (the library "
                    "has no vmap); use evaluation='batched' if f accepts a leading batch axis, "
                    "or evaluation='loop'."
                )
            self._call = mapped

    # -- argument assembly -------------------------------------------------------------
    def _split(self, flat: Any, batch: int | None) -> list[Any]:
        xp, out, start = self.xp, [], 0
        for shape, size in zip(self.shapes, self.sizes):
            piece = flat[..., start:start + size]
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
        """f's batched output with its batch axis moved back to 0 (and shape (m, *out))."""
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
                    a = xp.broadcast_to(xp.expand_dims(a, axis=0), (batch, *a.shape))
                    args[i] = self._place(a, batch)
        return args

    def _as_output(self, out: Any, where: str) -> Any:
        if out is None or isinstance(out, (tuple, list, dict)):
            raise TypeError(
                f"f must return a single array; it returned a {type(out).__name__} {where}. "
                "Wrap it so it returns one array, e.g. lambda x: xp.stack(f(x))."
            )
        return self.xp.asarray(out)

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

    # -- calls -------------------------------------------------------------------------
    def first(self, x_flat: Any) -> Any:
        """f at the unperturbed point; fixes the output shape and dtype. Returns (M,).

        With ``evaluation="auto"`` and a backend fallback (torch, jax: ``"loop"``), an f
        that the backend's vmap cannot trace switches the whole computation to the
        fallback here, before any perturbed point is evaluated.
        """
        if self._fallback is not None and self.mode == "vmap":
            try:
                return self._first(x_flat)
            except Exception:  # noqa: BLE001 - vmap refused f; the fallback re-raises f's own
                self.mode, self._call, self._fallback = self._fallback, self.fun, None
        return self._first(x_flat)

    def _first(self, x_flat: Any) -> Any:
        xp = self.xp
        x_flat = xp.asarray(x_flat, copy=True)  # an f writing into its argument must not move x
        with self.backend.no_grad():
            if self.mode in ("batched", "vmap"):
                args = self._arguments(self._split(xp.expand_dims(x_flat, axis=0), 1), 1)
                out = self._from_batched(self._as_output(self._apply(self._call, args, "at x"),
                                                         "at x"))
                if out.ndim < 1 or out.shape[0] != 1:
                    raise ValueError(
                        f"with evaluation={self.mode!r}, f must return an array with a leading "
                        f"batch axis; called on a batch of 1 it returned shape "
                        f"{tuple(out.shape)}. If f is not vectorised, use evaluation='loop'."
                    )
                self.out_shape = tuple(out.shape[1:])
            else:
                out = self._as_output(self._apply(
                    self.fun, self._arguments(self._split(x_flat, None), None), "at x"), "at x")
                self.out_shape = tuple(out.shape)
        self.out_dtype = out.dtype
        self._x0 = x_flat
        self.nfev += 1
        return xp.reshape(out, (-1,))

    def __call__(self, points: Any) -> Any:
        """Evaluate f at each row of ``points`` (m, n); returns (m, M)."""
        xp = self.xp
        m = points.shape[0]
        if self.executor is not None:
            from .distributed import PointTask, map_points

            task = PointTask(self.fun, tuple(self.args), self.variables, self.shapes, self.mode,
                             self.batch_axis, self.out_shape)
            out = map_points(self.executor, task, xp, points, chunk_size=self.task_size,
                             retries=self.retries, x0=self._x0)
            self.nfev += m
            return xp.reshape(out, (m, -1))
        with self.backend.no_grad():
            if self.mode in ("batched", "vmap"):
                out = self._from_batched(self._as_output(self._apply(
                    self._call, self._arguments(self._split(points, m), m),
                    f"at a batch of {m} perturbed points"), "for a batch"))
                expected = (m, *self.out_shape)
                if tuple(out.shape) != expected:
                    raise ValueError(
                        f"with evaluation={self.mode!r}, f returned shape {tuple(out.shape)} for "
                        f"a batch of {m} points; expected {expected}. f must map each batch "
                        "element independently (or use evaluation='loop')."
                    )
            else:
                rows = []
                for r in range(m):
                    y = self._as_output(self._apply(
                        self.fun, self._arguments(self._split(points[r, ...], None), None),
                        "at a perturbed point"), "at a perturbed point")
                    if tuple(y.shape) != self.out_shape:
                        raise ValueError(
                            f"f returned shape {tuple(y.shape)} at a perturbed point but "
                            f"{self.out_shape} at x; the output shape must not depend on x."
                        )
                    rows.append(y)
                out = xp.stack(rows, axis=0)
        self.nfev += m
        return xp.reshape(out, (m, -1))


def _is_array(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "__array_namespace__") or (
        type(a).__module__.split(".", 1)[0] in ("numpy", "torch", "jax", "jaxlib", "cupy"))


def representable_steps(xp: Any, x_flat: Any, h: Any) -> Any:
    """``(x + h) - x``: the step the arithmetic actually takes (0 where h is lost).

    At x = +-inf it is NaN (inf - inf), which the engine reports as NON_FINITE.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # x + h beyond the largest float: inf
        return (x_flat + h) - x_flat


def differences(
    xp: Any,
    evaluate: Evaluator,
    x_flat: Any,
    f0: Any,
    directions: Sequence[BasisDirection | VectorDirection | GroupDirection],
    entries: np.ndarray,
    *,
    chunk_points: int | None,
    memory_budget: int,
    offsets: Sequence[float] | None = None,
) -> tuple[Any, Any]:
    """Finite-difference estimates for every entry. Returns ``(values, status)``, (E, M).

    ``entries`` is a host int array (E, number of basis directions) of element indices.
    With ``offsets`` (one real direction; its method's weights and step power are then
    unused) the values are the raw ``f(x + o h d) - f(x)`` per offset, (E, len, M): the
    adaptive driver combines points of consecutive levels itself.
    """
    n = x_flat.shape[0]
    m_out = f0.shape[0]
    n_entries = entries.shape[0]
    point_lists = [method_points(d.method) for d in directions]
    stencil_uses_f0 = any(o == 0 for o, _ in point_lists[0])
    if offsets is not None:
        assert len(directions) == 1 and not isinstance(directions[0].method, ComplexStep)
        assert all(o != 0 for o in offsets)
        point_lists = [tuple((float(o), 1.0) for o in offsets)]
    is_complex = any(isinstance(d.method, ComplexStep) for d in directions)
    subtract_f0 = not is_complex  # real stencils: weights sum to zero
    # With f0 subtracted, the unperturbed point contributes w * (f0 - f0) = 0: f(x) is
    # evaluated once by the caller and never again here.
    combos = [c for c in itertools.product(*point_lists)
              if not (subtract_f0 and all(offset == 0 for offset, _ in c))]
    k = len(combos)
    # A stencil that uses f(x) (forward, backward) subtracts it from every output. In one
    # batched call a library may round f(x) differently from a batch of one (BLAS
    # blocking), turning exact zeros into eps*|f|/h noise: each chunk then carries its
    # own unperturbed row and subtracts that, so both come from the same call.
    # Raw per-offset values follow the stencil they come from: with its f(x) row when
    # the stencil uses f(x), so an output no point moves is exactly 0 in every call.
    uses_f0 = subtract_f0 and (stencil_uses_f0 if offsets is not None else len(combos) < (
        math.prod(len(p) for p in point_lists)))
    baseline_row = uses_f0 and evaluate.mode in ("batched", "vmap")
    if n_entries == 0:
        shape = (0, m_out) if offsets is None else (0, k, m_out)
        return (xp.zeros(shape, dtype=_result_dtype(xp, f0, x_flat)),
                xp.zeros((0, m_out), dtype=xp.int8))

    itemsize = np.dtype(str(x_flat.dtype).split(".")[-1]).itemsize if _np_dtype_ok(
        x_flat.dtype) else 8
    # Per point the chunk holds its row twice (the rows and their stack), a share of the
    # per-direction shifts, the output and two combine temporaries of the output size.
    bytes_per_point = max(1, (3 * n + 3 * m_out) * itemsize * (2 if is_complex else 1))
    if chunk_points is None:
        chunk_points = max(1, memory_budget // bytes_per_point)
    per_chunk = max(1, chunk_points // k)

    device = _device(x_flat)
    work = xp.astype(x_flat, _complex_of(xp, x_flat.dtype)) if is_complex else x_flat
    arange_n = xp.arange(n, device=device)
    # basis directions only: copy x once per point and add each step at its element,
    # instead of building (c, n) unit matrices and shifting whole rows with them
    index_add = _index_add(xp)
    if not all(isinstance(d, BasisDirection) for d in directions):
        index_add = None
    f0_row = xp.expand_dims(f0, axis=0)
    values, statuses = [], []
    for start in range(0, n_entries, per_chunk):
        block = entries[start:start + per_chunk]
        c = block.shape[0]
        # per direction: the (c,) step, and either the element index (indexed updates)
        # or the mask of the elements it moves with their steps (None and the (c, n)
        # shift for a vector)
        units, masks, steps, step_bad, step_nan, basis_idx = [], [], [], [], [], []
        for d in directions:
            if isinstance(d, BasisDirection):
                idx = xp.asarray(block[:, d.column], device=device)
                h_sel = xp.take(d.h, idx, axis=0)
                basis_idx.append(idx)
                if index_add is None:
                    masks.append(xp.expand_dims(idx, 1) == xp.expand_dims(arange_n, 0))
                    units.append(xp.expand_dims(h_sel, 1))  # (c, 1): the step of each row
            elif isinstance(d, GroupDirection):
                idx = xp.asarray(block[:, d.column], device=device)
                masks.append(xp.expand_dims(idx, 1) == xp.expand_dims(d.colour, 0))
                units.append(xp.expand_dims(d.h, 0))  # (1, n): each member's own step
                h_sel = xp.ones((c,), dtype=x_flat.dtype)  # divided per column by the caller
            else:
                h_sel = xp.broadcast_to(xp.reshape(d.t, (1,)), (c,))
                masks.append(None)
                with np.errstate(invalid="ignore"):  # 0 * inf for an inf step: NON_FINITE
                    units.append(xp.expand_dims(d.v, 0) * xp.expand_dims(h_sel, 1))
            steps.append(h_sel)
            step_bad.append(h_sel == 0)
            step_nan.append(~xp.isfinite(h_sel))
        if index_add is not None:
            batch = _basis_points(xp, index_add, work, combos, basis_idx, steps, c)
        else:
            # elements a basis or group direction does not move get -0.0 added, the one
            # addition that leaves every x unchanged (x + 0.0 turns -0.0 into +0.0)
            neg_zero = xp.asarray(complex(-0.0, -0.0) if is_complex else -0.0,
                                  dtype=work.dtype, device=device)
            rows = []
            for combo in combos:
                point = work
                for (offset, _), unit, mask in zip(combo, units, masks):
                    with np.errstate(all="ignore"):  # inf steps, x + h beyond the largest
                        if isinstance(offset, complex):
                            unit = xp.astype(unit, work.dtype) * offset
                        elif offset != 1.0:
                            unit = unit * offset
                        shift = unit if mask is None else xp.where(mask, unit, neg_zero)
                        point = point + shift  # non-finite points: NON_FINITE below
                rows.append(point)
            batch = xp.reshape(xp.stack(rows, axis=1), (c * k, n))
        if baseline_row:
            y_all = evaluate(xp.concat([batch, xp.expand_dims(work, 0)], axis=0))
            f0_row = y_all[-1:, :]
            y = xp.reshape(y_all[:-1, :], (c, k, m_out))
        else:
            y = xp.reshape(evaluate(batch), (c, k, m_out))
        with np.errstate(all="ignore"):  # inf - inf where f is not finite: status says so
            acc = None
            for j, combo in enumerate(combos if offsets is None else ()):
                weight = math.prod(w for _, w in combo)
                term = y[:, j, :] - f0_row if subtract_f0 else y[:, j, :]
                term = term * weight
                acc = term if acc is None else acc + term
            if offsets is not None:
                acc = y - xp.expand_dims(f0_row, 1)  # (c, k, M): the caller combines
            assert acc is not None
            if is_complex:
                acc = xp.real(acc)
            denom = None
            for d, h_sel in zip(directions, steps):
                p = h_sel ** d.method.deriv
                denom = p if denom is None else denom * p
            # where a step vanished the status says so; divide by 1 there, not by zero
            assert denom is not None
            denom = xp.where(denom == 0, xp.asarray(1.0, dtype=denom.dtype), denom)
            if offsets is None:
                acc = acc / xp.expand_dims(denom, 1)
            nonfinite = ~xp.all(xp.isfinite(y), axis=1) | ~xp.isfinite(f0_row)
            bad_step = _any_list(xp, step_bad)
            nan_step = _any_list(xp, step_nan)
            status = xp.where(
                xp.expand_dims(bad_step, 1), xp.asarray(int(Status.STEP_TOO_SMALL), dtype=xp.int8),
                xp.where(nonfinite | xp.expand_dims(nan_step, 1),
                         xp.asarray(int(Status.NON_FINITE), dtype=xp.int8),
                         xp.asarray(int(Status.SUCCESS), dtype=xp.int8)))
        ok = status == int(Status.SUCCESS)
        acc = xp.where(ok if offsets is None else xp.expand_dims(ok, 1), acc,
                       xp.asarray(xp.nan, dtype=acc.dtype))
        values.append(acc)
        statuses.append(status)
    if len(values) == 1:
        return values[0], statuses[0]
    return xp.concat(values, axis=0), xp.concat(statuses, axis=0)


def _index_add(xp: Any) -> Callable[[Any, tuple[Any, ...], Any], Any] | None:
    """``a[index] += v`` on an array the engine owns, or None where the namespace has
    no in-place indexed update (then points are built from unit matrices). jax has
    ``.at[...].add``, but outside jit each call copies the whole batch: measured 1.4x
    slower than unit matrices for a batched Hessian, so jax keeps them."""
    from array_api_compat import is_cupy_namespace, is_numpy_namespace, is_torch_namespace

    if is_numpy_namespace(xp) or is_cupy_namespace(xp) or is_torch_namespace(xp):
        def add(a: Any, index: tuple[Any, ...], v: Any) -> Any:
            a[index] += v
            return a
        return add
    return None


def _basis_points(xp: Any, index_add: Callable[[Any, tuple[Any, ...], Any], Any], work: Any,
                  combos: list[Any], basis_idx: list[Any], steps: list[Any], c: int) -> Any:
    """(c * k, n) perturbed inputs: row (e, j) is x plus, per direction of the entry,
    ``offset_j * h_e`` at its element. Unperturbed elements are copies of x (a -0.0
    stays -0.0), and each step is added in the same order as the unit-matrix path."""
    n = work.shape[0]
    k = len(combos)
    points = _tiled(xp, work, c * k)
    rows = xp.arange(c, device=_device(work)) * k
    with np.errstate(all="ignore"):  # inf steps, x + h beyond the largest float
        for j, combo in enumerate(combos):
            for (offset, _), idx, h_sel in zip(combo, basis_idx, steps):
                if offset == 0:
                    continue
                if isinstance(offset, complex):
                    shift = xp.astype(h_sel, work.dtype) * offset
                else:
                    shift = h_sel * offset if offset != 1.0 else h_sel
                points = index_add(points, (rows + j, idx), shift)
    assert points.shape == (c * k, n)
    return points


def _tiled(xp: Any, row: Any, count: int) -> Any:
    """A fresh, writable (count, n) array whose rows are copies of ``row``."""
    from array_api_compat import is_torch_namespace

    full = xp.broadcast_to(xp.expand_dims(row, 0), (count, row.shape[0]))
    if is_torch_namespace(xp):
        # clone, not contiguous(): for one row the expanded view is already contiguous,
        # and contiguous() would hand back x itself for the in-place adds
        import torch

        return full.clone(memory_format=torch.contiguous_format)
    # numpy, cupy: a C-ordered copy (copying the broadcast view keeps its layout: 'F')
    out = xp.empty((count, row.shape[0]), dtype=row.dtype, device=_device(row))
    out[...] = full
    return out


def _any_list(xp: Any, masks: list[Any]) -> Any:
    out = masks[0]
    for m in masks[1:]:
        out = out | m
    return out


def _np_dtype_ok(dtype: Any) -> bool:
    try:
        np.dtype(str(dtype).split(".")[-1])
        return True
    except TypeError:
        return False


def _result_dtype(xp: Any, f0: Any, x: Any) -> Any:
    return xp.result_type(f0.dtype, x.dtype)


def _complex_of(xp: Any, dtype: Any) -> Any:
    return xp.complex64 if dtype == xp.float32 else xp.complex128


def _device(x: Any) -> Any:
    from array_api_compat import device

    return device(x)
