"""Perturbed points and their weighted differences, written once against ``xp``.

Every plan reduces to *entries*: an entry is a derivative along one or two directions,
each a basis vector ``e_i`` (per-element step ``h_i``), a colour group (every element of
one colour at once) or a given vector ``v`` (scalar step ``t``). For an entry with
directions ``d1, d2`` and stencils ``s1, s2`` the estimate is::

    sum_{k,l} w1_k w2_l (f(x + o1_k h1 d1 + o2_l h2 d2) - f(x)) / (h1**q1 h2**q2)

Entries are processed in chunks sized to a memory budget: each chunk builds its points
and makes ONE call of the evaluator.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import device as _device

from ..result import Status
from ..stencils import AbstractMethod, ComplexStep

__all__ = ["DEFAULT_MEMORY_BUDGET", "BasisDirection", "Differences", "GroupDirection",
           "VectorDirection", "chunk_points", "combos_of", "differences", "itemsize",
           "representable_steps", "combo_weight"]

#: Bytes of perturbed inputs plus outputs held at once by default (256 MiB).
DEFAULT_MEMORY_BUDGET = 256 * 2**20


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
    No division happens here: the caller divides each structurally nonzero ``(row,
    column)`` by its own ``h[column]`` (valid because no two columns of a colour share a
    row: Curtis-Powell-Reid).
    """

    method: AbstractMethod
    h: Any  # (n,) steps actually used
    colour: Any  # (n,) int colour of each element, on the device
    column: int


Direction = BasisDirection | VectorDirection | GroupDirection


@dataclass
class Differences:
    """What :func:`differences` returns, one row per entry."""

    values: Any  # (E, M), or raw per offset (E, k, M) with offsets=
    status: Any  # (E, M) int8
    extras: list[Any] = field(default_factory=list)  # (E, M) per requested functional
    clean: bool = False  # known without a look: every status is SUCCESS


def representable_steps(xp: Any, x_flat: Any, h: Any, *, silenced: bool = False) -> Any:
    """``(x + h) - x``: the step the arithmetic actually takes (0 where h is lost).

    At x = +-inf it is NaN (inf - inf), which the engine reports as NON_FINITE. Steps
    come back in x's dtype: a rule computing them from f's (wider) values must not move
    the points to another dtype (a 16-bit x would be evaluated in float32). ``silenced``:
    the caller already holds numpy's warnings off (entering errstate again costs ~1 us).
    """
    if h.dtype != x_flat.dtype:
        h = xp.astype(h, x_flat.dtype)
    if silenced:
        return (x_flat + h) - x_flat
    with np.errstate(invalid="ignore", over="ignore"):  # x + h beyond the largest float: inf
        return (x_flat + h) - x_flat


def combo_weight(combo: Any) -> float:
    """One stencil point's weight: the product of its per-axis weights."""
    return math.prod(w for _, w in combo)


_ITEMSIZE: dict[int, tuple[Any, int]] = {}


def itemsize(xp: Any, dtype: Any) -> int:
    """Bytes per element of a float dtype of any namespace (looked up once per dtype
    object, by identity: dtypes of different libraries must not be compared)."""
    found = _ITEMSIZE.get(id(dtype))
    if found is None or found[0] is not dtype:
        size = int(xp.finfo(dtype).bits) // 8 if xp.isdtype(dtype, "real floating") else 16
        found = _ITEMSIZE[id(dtype)] = (dtype, size)
    return found[1]


def chunk_points(n: int, m_out: int, item: int, complex_: bool, memory_budget: int,
                 chunk_size: int | None) -> int:
    """The one chunk-size rule: points per call of f under ``memory_budget``.

    Per point the chunk holds its row twice (the rows and their stack), a share of the
    per-direction shifts, the output and two combine temporaries of the output size.
    """
    if chunk_size is not None:
        return chunk_size
    per_point = max(1, (3 * n + 3 * m_out) * item * (2 if complex_ else 1))
    return max(1, memory_budget // per_point)


def combos_of(directions: Sequence[Direction], offsets: Sequence[float] | None = None
              ) -> list[tuple[tuple[Any, Any], ...]]:
    """The points of an entry, as tuples of (offset, weight) per direction, without the
    unperturbed point (f(x) is subtracted, so it contributes nothing)."""
    return _layout(tuple(d.method for d in directions),
                   None if offsets is None else tuple(offsets)).combos


@dataclass(frozen=True)
class _Layout:
    """What a tuple of stencils implies for the points, computed once per stencils."""

    combos: list[tuple[tuple[Any, Any], ...]]
    is_complex: bool
    uses_f0: bool  # a real stencil whose points include x itself (forward, backward)
    opposite: float  # two points with opposite power-of-two weights: that weight, else 0


@functools.lru_cache(maxsize=256)
def _layout(methods: tuple[AbstractMethod, ...], offsets: tuple[float, ...] | None) -> _Layout:
    lists = [m.points for m in methods]
    if offsets is not None:
        lists = [tuple((float(o), 1.0) for o in offsets)]
    is_complex = any(isinstance(m, ComplexStep) for m in methods)
    combos = [c for c in itertools.product(*lists)
              if is_complex or not all(offset == 0 for offset, _ in c)]
    full_grid = math.prod(len(points) for points in lists)
    uses_f0 = not is_complex and (any(o == 0 for o, _ in methods[0].points)
                                  if offsets is not None else len(combos) < full_grid)
    opposite = 0.0
    if len(combos) == 2 and not is_complex and offsets is None:
        w0, w1 = (combo_weight(combo) for combo in combos)
        if w0 == -w1 and w1 != 0 and math.frexp(abs(w1))[0] == 0.5:
            opposite = float(w1)
    return _Layout(combos, is_complex, uses_f0, opposite)


def differences(
    evaluate: Any,
    x_flat: Any,
    f0: Any,
    directions: Sequence[Direction],
    entries: np.ndarray,
    *,
    chunk_size: int | None,
    memory_budget: int,
    offsets: Sequence[float] | None = None,
    extras: Sequence[Sequence[float]] = (),
) -> Differences:
    """Finite-difference estimates for every entry; see :class:`Differences`.

    ``entries`` is a host int array (E, number of basis/group directions). With
    ``offsets`` (one real direction) the values are the raw ``f(x + o h d) - f(x)`` per
    offset, (E, len, M), for the adaptive rule to combine across levels. ``extras`` are
    further linear functionals of the same points (weights aligned with
    :func:`combos_of`): ``sum_j w_j (f_j - f(x))``, undivided, e.g. the second difference
    that estimates the truncation error.
    """
    xp = evaluate.xp
    n = x_flat.shape[0]
    m_out = f0.shape[0]
    n_entries = entries.shape[0]
    layout = _layout(tuple(d.method for d in directions),
                     None if offsets is None else tuple(offsets))
    combos = layout.combos
    k = len(combos)
    is_complex = layout.is_complex
    subtract_f0 = not is_complex  # real stencils: weights sum to zero
    # A stencil that uses f(x) (forward, backward) subtracts it from every output. In one
    # batched call a library may round f(x) differently from a batch of one (BLAS
    # blocking): each call then subtracts its own sentinel row, the same x in the same
    # call, so an output no point moves comes out as 0.
    uses_f0 = layout.uses_f0
    if n_entries == 0:
        shape = (0, m_out) if offsets is None else (0, k, m_out)
        dtype = xp.result_type(f0.dtype, x_flat.dtype)
        dev = evaluate.device
        return Differences(xp.zeros(shape, dtype=dtype, device=dev),
                           xp.zeros((0, m_out), dtype=xp.int8, device=dev),
                           [xp.zeros((0, m_out), dtype=dtype, device=dev) for _ in extras])

    per_chunk = max(1, chunk_points(n, m_out, itemsize(xp, x_flat.dtype), is_complex,
                                    memory_budget, chunk_size) // k)
    if evaluate.progress is not None:  # the points this computation is about to evaluate
        evaluate.progress.expect(n_entries * k)
    device = evaluate.device
    work = xp.astype(x_flat, xp.complex64 if x_flat.dtype == xp.float32 else xp.complex128) if (
        is_complex) else x_flat
    backend = evaluate.backend
    # basis directions only: copy x once per point and add each step at its element,
    # instead of building (c, n) unit matrices and shifting whole rows with them
    index_add = backend.index_add if all(isinstance(d, BasisDirection)
                                         for d in directions) else None
    values: list[Any] = []
    statuses: list[Any] = []
    extra_parts: list[list[Any]] = [[] for _ in extras]
    f0_global = xp.reshape(f0, (1, m_out))
    clean = True
    traced = backend.is_traced(x_flat) or backend.is_traced(f0)
    # a batched call's sentinel row (x itself) is built into the batch: no copy of it
    sentinel = index_add is not None and evaluate.batched and not is_complex
    for start in range(0, n_entries, per_chunk):
        block = entries[start:start + per_chunk]
        c = block.shape[0]
        steps, masks, units, basis_idx = _chunk_directions(xp, directions, block, c, n,
                                                           x_flat.dtype, device,
                                                           index_add is not None)
        if index_add is not None:
            batch = _basis_points(xp, backend, work, combos, basis_idx, steps, c, sentinel,
                                  device)
        else:
            batch = _shifted_points(xp, work, combos, units, masks, is_complex, device, c, n)
        y_flat = evaluate(batch, with_sentinel=sentinel)
        last = getattr(evaluate, "last_sentinel", None)
        f0_row = last if (uses_f0 and last is not None) else f0_global
        y = xp.reshape(y_flat, (c, k, m_out))
        with np.errstate(all="ignore"):  # inf - inf where f is not finite: status says so
            if layout.opposite:  # weights -w, +w: (y1 - y0) / (h / w), one subtraction (as
                acc = y[:, 1, :] - y[:, 0, :]  # accurate as f(x) taken from each, or more)
            else:
                acc = _combine(xp, y, f0_row, combos, subtract_f0, offsets is not None)
            for part, weights in zip(extra_parts, extras):
                part.append(_combine_with(xp, y, f0_row, weights))
            if is_complex:
                acc = xp.real(acc)
            denom = None
            for d, h_sel in zip(directions, steps):
                p = h_sel ** d.method.deriv
                denom = p if denom is None else denom * p
            assert denom is not None
            if layout.opposite:  # w a power of 2: h / w is exact, and one division of the
                denom = denom / layout.opposite  # (c, M) values instead of two passes
            if offsets is None:  # a vanished step gives 0/0 here: its status says so below
                if xp.isdtype(acc.dtype, "complex floating"):  # jax's strict promotion
                    denom = xp.astype(denom, acc.dtype)
                acc = acc / xp.reshape(denom, (c, 1))
            # the usual case costs one reduction: every value finite. A non-finite f value
            # makes the weighted sum non-finite, and so does a zero or non-finite step
            # (a zero step divides 0 by 0). The reduction is a sum: NaN and inf survive it
            # (inf - inf is NaN), and a sum that merely overflows only takes the full
            # status path below; isfinite over the whole (c, M) block costs 3-5x more.
            # (raw differences, offsets=, are not divided: their steps are looked at)
            # (under jit there is no value to look at: the full status, as array operations)
            if not is_complex and offsets is None and not traced and bool(
                    xp.isfinite(xp.sum(acc))):
                status = xp.zeros((c, m_out), dtype=xp.int8, device=device)
            else:
                clean = False
                status = _status(xp, y, f0_row, steps)
                ok = status == int(Status.SUCCESS)
                acc = xp.where(ok if offsets is None else xp.expand_dims(ok, 1), acc,
                               xp.asarray(xp.nan, dtype=acc.dtype, device=device))
        values.append(acc)
        statuses.append(status)

    def joined(parts: list[Any]) -> Any:
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)

    return Differences(joined(values), joined(statuses), [joined(p) for p in extra_parts],
                       clean)


def _chunk_directions(xp: Any, directions: Sequence[Direction], block: np.ndarray, c: int,
                      n: int, dtype: Any, device: Any, indexed: bool
                      ) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Per direction: the (c,) step, and either the element index (indexed updates) or
    the mask of the elements it moves with their steps (None and the (c, n) shift for a
    vector)."""
    steps, masks, units, basis_idx = [], [], [], []
    arange_n = None
    for d in directions:
        if isinstance(d, BasisDirection):
            column = block[:, d.column]
            idx = xp.asarray(column, device=device)
            whole = column.shape[0] == d.h.shape[0] and bool(
                (column == np.arange(column.shape[0])).all())
            h_sel = d.h if whole else xp.take(d.h, idx, axis=0)  # every element in order
            basis_idx.append(idx)
            if not indexed:
                if arange_n is None:
                    arange_n = xp.arange(n, device=device)
                masks.append(xp.expand_dims(idx, 1) == xp.expand_dims(arange_n, 0))
                units.append(xp.expand_dims(h_sel, 1))  # (c, 1): the step of each row
        elif isinstance(d, GroupDirection):
            idx = xp.asarray(block[:, d.column], device=device)
            masks.append(xp.expand_dims(idx, 1) == xp.expand_dims(d.colour, 0))
            units.append(xp.expand_dims(d.h, 0))  # (1, n): each member's own step
            h_sel = xp.ones((c,), dtype=dtype, device=device)  # divided per column later
        else:
            h_sel = xp.broadcast_to(xp.reshape(d.t, (1,)), (c,))
            masks.append(None)
            with np.errstate(invalid="ignore"):  # 0 * inf for an inf step: NON_FINITE
                units.append(xp.expand_dims(d.v, 0) * xp.expand_dims(h_sel, 1))
        steps.append(h_sel)
    return steps, masks, units, basis_idx


def _shifted_points(xp: Any, work: Any, combos: list[Any], units: list[Any],
                    masks: list[Any], is_complex: bool, device: Any, c: int, n: int) -> Any:
    """(c * k, n) points from unit shifts. Elements a basis or group direction does not
    move get -0.0 added, the one addition that leaves every x unchanged (x + 0.0 turns
    -0.0 into +0.0)."""
    neg_zero = xp.asarray(complex(-0.0, -0.0) if is_complex else -0.0, dtype=work.dtype,
                          device=device)
    rows = []
    complex_work = xp.isdtype(work.dtype, "complex floating")
    for combo in combos:
        point = work
        for (offset, _), unit, mask in zip(combo, units, masks):
            with np.errstate(all="ignore"):  # inf steps, x + h beyond the largest float
                if isinstance(offset, complex):
                    unit = xp.astype(unit, work.dtype) * offset
                elif offset != 1.0:
                    unit = unit * offset
                if complex_work and unit.dtype != work.dtype:  # jax's strict promotion
                    unit = xp.astype(unit, work.dtype)
                shift = unit if mask is None else xp.where(mask, unit, neg_zero)
                if point.ndim < shift.ndim:  # explicit: jax's rank promotion "raise"
                    point = xp.expand_dims(point, 0)
                point = point + shift  # non-finite points: NON_FINITE below
        rows.append(point)
    return xp.reshape(xp.stack(rows, axis=1), (c * len(combos), n))


def _basis_points(xp: Any, backend: Any, work: Any, combos: list[Any], basis_idx: list[Any],
                  steps: list[Any], c: int, sentinel: bool, device: Any,
                  rows: Any = None) -> Any:
    """(c * k, n) perturbed inputs: row (e, j) is x plus, per direction of the entry,
    ``offset_j * h_e`` at its element. Unperturbed elements are copies of x (a -0.0
    stays -0.0), and each step is added in the same order as the unit-matrix path.
    ``sentinel``: one more, last row, x itself (the evaluator's sentinel). ``rows``:
    ``arange(0, c * k, k)`` on the device, where the caller keeps one."""
    k = len(combos)
    points = backend.fresh_rows(work, c * k + int(sentinel))
    if rows is None:
        rows = xp.arange(0, c * k, k, device=device)
    with np.errstate(all="ignore"):  # inf steps, x + h beyond the largest float
        for j, combo in enumerate(combos):
            for (offset, _), idx, h_sel in zip(combo, basis_idx, steps):
                if offset == 0:
                    continue
                if isinstance(offset, complex):
                    shift = xp.astype(h_sel, work.dtype) * offset
                else:
                    shift = h_sel * offset if offset != 1.0 else h_sel
                points = backend.index_add(points, (rows + j, idx), shift)
    return points


def _combine(xp: Any, y: Any, f0_row: Any, combos: list[Any], subtract_f0: bool,
             raw: bool) -> Any:
    """``sum_j w_j (y_j - f0)`` over an entry's points (or the raw (c, k, M) differences)."""
    if raw:
        return y - xp.expand_dims(f0_row, 1)
    acc = None
    for j, combo in enumerate(combos):
        weight = combo_weight(combo)
        term = y[:, j, :] - f0_row if subtract_f0 else y[:, j, :]
        if weight != 1.0:  # a forward difference's one point: no pass to multiply by 1
            term = term * weight
        acc = term if acc is None else acc + term
    assert acc is not None
    return acc


def _combine_with(xp: Any, y: Any, f0_row: Any, weights: Sequence[float]) -> Any:
    acc = None
    for j, w in enumerate(weights):
        if w == 0:
            continue
        term = (y[:, j, :] - f0_row) * w
        acc = term if acc is None else acc + term
    return acc if acc is not None else xp.zeros_like(y[:, 0, :])


def _status(xp: Any, y: Any, f0_row: Any, steps: list[Any]) -> Any:
    """(c, M) codes: STEP_TOO_SMALL where a step vanished, NON_FINITE where f or a step
    is not finite, else SUCCESS. The common all-finite case costs two reductions."""
    bad_step = _any(xp, [h == 0 for h in steps])
    nan_step = _any(xp, [~xp.isfinite(h) for h in steps])
    nonfinite = ~xp.all(xp.isfinite(y), axis=1) | ~xp.isfinite(f0_row)
    code, dev = xp.int8, _device(y)
    return xp.where(
        xp.expand_dims(bad_step, 1), xp.asarray(int(Status.STEP_TOO_SMALL), dtype=code,
                                                device=dev),
        xp.where(nonfinite | xp.expand_dims(nan_step, 1),
                 xp.asarray(int(Status.NON_FINITE), dtype=code, device=dev),
                 xp.asarray(int(Status.SUCCESS), dtype=code, device=dev)))


def _any(xp: Any, masks: list[Any]) -> Any:
    out = masks[0]
    for m in masks[1:]:
        out = out | m
    return out
