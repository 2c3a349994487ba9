"""The fast lane: a plain dense Jacobian or gradient at the cost of the bare batched call.

The engine (plans, step rules, :func:`~numdiffx._core.evaluation.points.differences`)
serves every operation, step rule and evaluation mode, and its generality costs about
100 us of Python per call: 4x the bare batched difference at n = 10 (issue 17). The
commonest call needs none of it: ``jacobian``/``gradient`` of one argument, a real
first-derivative stencil, a one-step rule (``auto``, ``fixed``, ``relative``), the
batched or vmap evaluation, x a float32/float64 array of a library with indexed updates
(numpy, torch, cupy). This lane runs that call with the engine's own pieces, in the
engine's order, so the result is bit-identical (``tests/test_fastlane.py`` compares them
on every stencil and backend):

- the same evaluator (f(x) first, the sentinel row, vmap's spot check and fallback);
- the same steps (the rule's nominal step made representable, ``(x + h) - x``);
- the same points (x's copies with each step added at its element) and combination;
- with ``full_output=True``, the engine's own rule run on a :class:`_LanePlan` (the
  dense Jacobian plan whose evaluation is the lane's batch): its steps, ``one_pass``, the
  estimate and statuses of ``strategies.diagnose`` from the same points (their second
  difference and slope), and the plan's layout of the DiffResult. A change to how the
  engine judges SUCCESS applies here unchanged.

What depends only on the options (the stencil, the rule, the point layout) is resolved
once per distinct options and cached. A call that is not plain -- other options, a
16-bit or complex x, more points than one chunk of the memory budget -- goes to the
engine before f is called. A call whose values or steps are not all finite (a domain
edge: statuses, the one-sided retry) is handed to the engine after the batched call:
the engine then evaluates f again, once, for those rare calls.

A small batched call on a library whose operations on small arrays cost more than
numpy's (torch on the CPU: ~2 us a dispatch against ~0.5 us) runs on the backend's host
bridge: the steps, points, sentinel check and differences in numpy on views of the same
memory (the same IEEE operations: the same bits), f on the library's zero-copy views of
the points, the result handed back as the library's view. Below ~200 elements it halves
the lane's own cost; beyond, the library's threaded kernels win and the bridge stays
shut. An output the bridge cannot carry unchanged (a tuple, complex, 16-bit) goes to the
engine, which evaluates f afresh.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from numdiffx.backends import HostBridgeRefused

from .evaluation.evaluator import Evaluator, EvaluatorSpec
from .evaluation.points import (
    Differences,
    _combine,
    _combine_with,
    _Layout,
    _layout,
    chunk_points,
    combo_weight,
    itemsize,
    representable_steps,
)
from .plans.columns import ColumnsPlan
from .plans.shared import check_dense_fits
from .problem import Problem
from .result import DiffResult
from .stencils import AbstractMethod, ComplexStep, Stencil, resolve_method
from .strategies.diagnose import diagnostic_weights
from .strategies.lane_estimate import FUSED, lane_estimate
from .strategies.nominal import (
    AbstractNominalRule,
    auto,
    dtype_eps,
    fixed,
    one_pass,
    relative,
)
from .strategies.resolve import resolve_step
from .strategies.stationary import rejudge_one_step
from .validation import array_kind, f0_iv

__all__ = ["NOT_TAKEN", "fast_jacobian"]

#: returned when the call is not plain: the engine computes it
NOT_TAKEN: Any = object()
#: the most perturbed elements (n * n * points per element) a host bridge takes: beyond
#: it torch's own kernels (threaded) beat numpy's; measured crossover n ~ 200 forward
_HOST_POINTS = 2 ** 15
_NUMPY_IS_ARRAY_API = hasattr(np, "isdtype") and hasattr(np, "permute_dims")
_QUIET = contextlib.nullcontext()  # torch, cupy: no floating-point warnings to silence


@dataclass(frozen=True)
class _Lane:
    """A plain call's options, resolved: the stencil, its point layout, the rule."""

    method: Stencil
    layout: _Layout
    rule: AbstractNominalRule
    weight: float  # a one-point stencil's weight (forward 1, backward -1)
    fused: bool  # full_output's estimate in lane_estimate's few operations (numpy)


_LANES: dict[tuple[Any, ...], _Lane | None] = {}


def _lane(method: object, step: object, evaluation: str) -> _Lane | None:
    """The resolved options, or None where they are not plain (or not valid: the
    engine's validation then says why)."""
    key = (type(method), method, type(step), step, evaluation)
    try:
        return _LANES[key]
    except KeyError:
        pass
    except TypeError:  # unhashable options (an array of steps): the engine
        return None
    lane = None
    try:
        m = resolve_method(method)
        rule = resolve_step(step, name="step")
    except (TypeError, ValueError):
        m = rule = None  # type: ignore[assignment]
    if (isinstance(m, Stencil) and not isinstance(m, ComplexStep) and m.deriv == 1
            and type(rule) in _RULES and evaluation in _MODES):
        layout = _layout((m,), None)
        if not layout.is_complex:
            weight = combo_weight(layout.combos[0])
            lane = _Lane(m, layout, cast(AbstractNominalRule, rule), weight, m in FUSED)
    if len(_LANES) < 256:
        _LANES[key] = lane
    return lane


_MODES = ("auto", "batched", "vmap", "loop")
_RULES = (auto, fixed, relative)  # exactly these: a subclass may run otherwise


def _positive_int(v: object) -> bool:
    return type(v) is int and v >= 1


def fast_jacobian(f: Callable[..., Any], args: Sequence[Any], argnums: object, method: object,
                  step: object, evaluation: object, chunk_size: object, memory_budget: object,
                  full_output: bool, op: str, batch_axis: object, sparsity: object,
                  executor: object, retries: object, f0: Any) -> Any:
    """The Jacobian (gradient) of a plain call, or :data:`NOT_TAKEN`."""
    if (sparsity is not None or executor is not None or type(full_output) is not bool
            or type(retries) is not int or retries != 0
            or type(batch_axis) is not int or batch_axis != 0
            or type(argnums) is not int or not isinstance(evaluation, str)
            or not callable(f) or not -len(args) <= argnums < len(args)):
        return NOT_TAKEN
    lane = _lane(method, step, evaluation)
    if lane is None:
        return NOT_TAKEN
    a = argnums % len(args)
    x = args[a]
    try:
        xp, backend = array_kind(x)
    except TypeError:
        return NOT_TAKEN
    if ((backend.index_add is None and not backend.eager_dispatch) or isinstance(x, np.generic)
            or not (x.dtype == xp.float64 or x.dtype == xp.float32) or backend.is_traced(x)
            or getattr(x, "is_meta", False)):
        return NOT_TAKEN
    if not (chunk_size is None or _positive_int(chunk_size)) or not _positive_int(
            memory_budget):
        return NOT_TAKEN  # the engine's validation says what is wrong
    n = math.prod(x.shape)
    budget, chunk = cast(int, memory_budget), cast("int | None", chunk_size)
    with backend.no_grad():  # once for every call of f below (each would enter its own)
        if backend.eager_dispatch:  # jax: numdiffx's arithmetic in numpy, or the engine
            # (full_output: the estimate divides, and XLA's division is not numpy's)
            bridge = backend.host_bridge(f, args, a) if f0 is None and not full_output else (
                None)
            if bridge is None:
                return NOT_TAKEN
        else:
            bridge = backend.host_bridge(f, args, a) if (
                evaluation == "batched" and f0 is None
                and n * n * len(lane.layout.combos) <= _HOST_POINTS) else None
        if bridge is None:
            return _plain(f, args, a, x, xp, backend, lane, evaluation, n, op, f0, budget,
                          chunk, full_output)
        # torch, jax on the CPU: steps, points, checks and differences in numpy (the same
        # IEEE operations, the same bits), f on the library's views of the same memory
        g, host_args, x_host = bridge
        host_xp, host = array_kind(x_host)
        host = getattr(g, "host_backend", host)  # jax's: numpy whose vmap maps f in jax
        try:
            out = _plain(g, host_args, a, x_host, host_xp, host, lane, evaluation, n, op,
                         None, budget, chunk, full_output)
        except HostBridgeRefused:  # f returned what the bridge does not carry: the engine
            return NOT_TAKEN
        if out is NOT_TAKEN:
            return out
        if not full_output:
            return backend.from_host(out)
        return DiffResult(value=backend.from_host(out.value),
                          error=backend.from_host(out.error),
                          step=backend.from_host(out.step), nfev=out.nfev,
                          status=backend.from_host(out.status))


class _HandOver(Exception):
    """The lane met what only the engine handles (a non-finite value, a one-sided retry)."""


def _plain(f: Callable[..., Any], args: Sequence[Any], a: int, x: Any, xp: Any, backend: Any,
           lane: _Lane, evaluation: str, n: int, op: str, f0: Any, memory_budget: int,
           chunk_size: int | None, full_output: bool) -> Any:
    k = len(lane.layout.combos)
    # x is only read here: every point f receives is a fresh copy (no private copy of x)
    xi = backend.unlinked(x)
    x_flat = xi if xi.ndim == 1 else xi.reshape(-1)  # the method, no namespace wrapper
    call_args = list(args)
    call_args[a] = xi
    ev = Evaluator(EvaluatorSpec(f, tuple(call_args), (a,), (tuple(xi.shape),), evaluation),
                   backend, xp)
    if f0 is None:
        f0_flat = ev.first(x_flat)
    else:  # the caller's f(x) (a solver's): validated as the engine does, not evaluated
        given = f0_iv(f0, xp)
        ev.out_shape = tuple(given.shape)
        f0_flat = ev.known(x_flat, given.reshape(-1))
    if ev.narrow_dtype is not None:
        return NOT_TAKEN  # a 16-bit f: its values are widened, the result narrowed back
    m_out = f0_flat.shape[0]
    if op == "gradient" and ev.out_shape != ():
        raise ValueError(f"gradient needs a scalar-valued f; f returned shape {ev.out_shape}. "
                         "Use nd.jacobian instead.")
    per_chunk = chunk_points(n, m_out, itemsize(xp, x_flat.dtype), False, memory_budget,
                             chunk_size) // k
    if per_chunk < n or n == 0:
        return NOT_TAKEN  # several chunks: the engine's loop over them
    check_dense_fits(m_out, n, x_flat.dtype)
    if full_output:  # the engine's rule, estimate and statuses on the lane's points
        # numpy itself for numpy arrays (its namespace is the array API's since numpy 2:
        # the same functions, without array_api_compat's wrapper per operation)
        pxp = np if type(x_flat) is np.ndarray and _NUMPY_IS_ARRAY_API else xp

        def plan() -> _LanePlan:
            return _LanePlan(Problem(pxp, backend, x_flat, (tuple(xi.shape),), (f"args[{a}]",),
                                     ev, f0_flat), lane)

        try:
            if pxp is np and lane.fused:  # the estimate in few operations (lane_estimate)
                return _fused_full(plan, ev, backend, lane, x_flat, f0_flat, tuple(xi.shape))
            engine = plan()
            return engine.finish(lane.rule.run(engine, full_output=True), True)
        except _HandOver:
            return NOT_TAKEN
    h = lane.rule.nominal(abs(x_flat), xp=xp, dtype=x_flat.dtype, method=lane.method)
    # numpy warns on x + h beyond the largest float, inf - inf: not clean, handled below
    with np.errstate(all="ignore") if type(x_flat) is np.ndarray else _QUIET:
        h = representable_steps(xp, x_flat, h, silenced=True)
        try:
            acc, _ = _differences(ev, xp, backend, lane, x_flat, f0_flat, h, ())
        except _HandOver:
            return NOT_TAKEN
    return acc.T.reshape((*ev.out_shape, *xi.shape))


def _differences(ev: Evaluator, xp: Any, backend: Any, lane: _Lane, x_flat: Any, f0_flat: Any,
                 h: Any, extras: Sequence[Sequence[float]], points: list[Any] | None = None
                 ) -> tuple[Any, list[Any]]:
    """The (n, M) values at the representable steps ``h`` (one batch, the engine's
    arithmetic) and the ``extras`` functionals of the same points, or :class:`_HandOver`
    where a value or step is not finite. ``points``: a list that receives f at the
    points (n, k, M) and the f(x) row they are differenced against. Numpy's warnings
    are the caller's to hold."""
    layout, k, n = lane.layout, len(lane.layout.combos), x_flat.shape[0]
    m_out = f0_flat.shape[0]
    sentinel = ev.batched  # the loop evaluates no sentinel row: none is built
    batch = _diagonal_points(backend, x_flat, layout.combos, h, n, sentinel)
    y_flat = ev(batch, with_sentinel=sentinel)  # vmap may give way to the loop here
    f0_row = ev.last_sentinel if layout.uses_f0 and ev.last_sentinel is not None else (
        f0_flat.reshape(1, m_out))
    if k == 1:  # forward, backward: one point per element, rows in element order
        acc = y_flat - f0_row
        if lane.weight != 1.0:
            acc = acc * lane.weight
    elif layout.opposite:  # as the engine: (y1 - y0) / (h / w); rows e k + j
        acc = y_flat[1::2] - y_flat[0::2]
        h = h / layout.opposite
    else:
        acc = _combine(xp, y_flat.reshape(n, k, m_out), f0_row, layout.combos, True, False)
    acc = backend.divide(acc, h.reshape(n, 1))  # the engine's h ** 1: the same bits
    total = acc.sum()  # the method: no wrapper (numpy, torch, cupy)
    if not (math.isfinite(float(total)) if total.dtype == x_flat.dtype
            or xp.isdtype(total.dtype, "real floating") else bool(xp.isfinite(total))):
        raise _HandOver  # NaN/inf or a vanished step: statuses, one-sided retry
    y = y_flat.reshape(n, k, m_out)
    if points is not None:
        points += [y, f0_row]
    if not extras:
        return acc, []
    return acc, [_combine_with(xp, y, f0_row, w) for w in extras]


def _fused_full(plan: Callable[[], _LanePlan], ev: Evaluator, backend: Any, lane: _Lane,
                x_flat: np.ndarray, f0_flat: np.ndarray, x_shape: tuple[int, ...]
                ) -> DiffResult:
    """``full_output`` of a numpy call (or a host bridge's) with a :data:`FUSED` stencil:
    the rule's steps, one batch, and :func:`lane_estimate`'s few operations on its
    points, in ``one_pass``'s order (the estimate, the stationary probe where an entry
    fails), laid out as :meth:`ColumnsPlan.finish` lays it; where a diagnostic is not
    finite, ``one_pass`` itself on the same batch. ``plan()``: the engine's plan of this
    call, built only where one of those needs it."""
    # the rule's steps (AbstractNominalRule.steps: nominal at |x|, then (x + h) - x)
    h = representable_steps(np, x_flat, lane.rule.nominal(
        np.abs(x_flat), xp=np, dtype=x_flat.dtype, method=lane.method))
    points: list[Any] = []
    with np.errstate(all="ignore"):
        acc, _ = _differences(ev, np, backend, lane, x_flat, f0_flat, h, (), points)
        y, f0_row = points
        decided = lane_estimate(lane.method, dtype_eps(np, x_flat.dtype), h, acc, y, f0_row,
                                f0_flat)
        # the engine's diagnostics, combined as it combines them, where they are needed
        weights = diagnostic_weights(lane.method) if decided is None or decided[2] else ()
        extras = [_combine_with(np, y, f0_row, w) for w in weights]
    if decided is None:  # the engine's estimate, statuses and probe, from this batch
        engine = plan()
        engine.first = (h, Differences(acc, np.zeros(acc.shape, dtype=np.int8), extras, True))
        return engine.finish(one_pass(engine, h, full_output=True), True)
    error, status, failing = decided
    if failing:  # a stationary point of a visibly curved f (stationary.py)
        error, status = rejudge_one_step(plan(), lane.method, h, acc, error, status, extras)
    shape = (*ev.out_shape, *x_shape)
    return DiffResult(value=acc.T.reshape(shape), error=error.T.reshape(shape),
                      step=h.reshape(x_shape), nfev=ev.nfev, status=status.T.reshape(shape))


class _LanePlan(ColumnsPlan):
    """The engine's dense Jacobian plan whose one evaluation is the lane's: the rule's
    :meth:`run` (its steps, the estimate and statuses of
    :func:`~numdiffx._core.strategies.nominal.one_pass`) and :meth:`finish` are the
    engine's own, so ``full_output`` gives the engine's result from one batch. What
    only the engine handles (a non-finite value, the one-sided retry, another stencil)
    raises :class:`_HandOver`."""

    def __init__(self, problem: Problem, lane: _Lane) -> None:  # the checks are made
        self.problem, self.method, self.deriv = problem, lane.method, 1
        self.n_entries, self.n_out = problem.n, problem.m_out
        self.lane = lane
        #: the steps and Differences of a batch already evaluated (the fused estimate's)
        self.first: tuple[Any, Differences] | None = None

    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        if rows is not None or offsets is not None or method not in (None, self.method):
            raise _HandOver
        if self.first is not None and self.first[0] is h:
            return self.first[1]  # this batch was evaluated already, with these extras
        p = self.problem
        xp, x_flat = p.xp, p.x_flat
        with np.errstate(all="ignore") if type(x_flat) is np.ndarray else _QUIET:
            acc, parts = _differences(p.evaluator, xp, p.backend, self.lane, x_flat, p.f0, h,
                                      extras)
        status = xp.zeros(acc.shape, dtype=xp.int8, device=p.device)
        return Differences(acc, status, parts, True)

    def estimate_steps(self, h: Any) -> Any:
        # the engine's ``take`` of every entry's step, in entry order: the steps themselves
        return h.reshape(-1, 1)

    def f0_entries(self) -> Any:
        # the engine's ``expand_dims(f0, 0)`` of the flat f(x): the method, a view
        return self.problem.f0.reshape(1, -1)


def _diagonal_points(backend: Any, x_flat: Any, combos: list[Any], h: Any, n: int,
                     sentinel: bool) -> Any:
    """The engine's basis points (x's copies, ``offset_j * h_e`` added at element e of row
    ``e k + j``; x itself as a last row with ``sentinel``), the adds made on strided views:
    row ``e k + j``'s element e sits every ``k n + 1`` elements of the flat batch. The
    same one addition per element as the engine's indexed add: the same bits."""
    k = len(combos)
    points = backend.fresh_rows(x_flat, n * k + int(sentinel))
    flat = points.reshape(-1)  # fresh and contiguous: a view
    stride = k * n + 1
    for j, combo in enumerate(combos):
        offset = combo[0][0]
        diagonal = flat[j * n:j * n + stride * (n - 1) + 1:stride]
        diagonal += h if offset == 1.0 else h * offset  # in place, through the view
    return points

