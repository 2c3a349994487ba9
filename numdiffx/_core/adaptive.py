"""Adaptive steps: a geometric step sequence, Ridders extrapolation, honest error estimates.

``steps.adaptive(...)`` is a step rule that the public operations recognise: instead
of one step per element they evaluate *levels* ``h_k = h_0 / ratio**k`` (each level
ONE call of the engine, i.e. one batched evaluation of every still-active entry),
extrapolate across levels with Richardson's tableau (Ridders 1982) and keep, per
output element, the tableau entry with the smallest error estimate.

The estimate of a tableau entry is ``safety * max(|A_kj - A_k,j-1|, |A_kj -
A_k-1,j-1|) + R`` with ``R`` the round-off (or the user's noise level) of f divided by
the step, amplified by the extrapolation. Everything is written against ``xp``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .result import Status
from .stencils import AbstractMethod, ComplexStep, Stencil, backward, forward
from .steps import AbstractStepRule, _positive_finite

__all__ = ["Level", "adaptive", "error_powers", "extrapolate"]


def _host(a: Any) -> np.ndarray:
    from .result import _to_host

    return np.asarray(_to_host(a))


@dataclass(frozen=True)
class adaptive(AbstractStepRule):  # noqa: N801 - public lower-case constructor
    """Per-element adaptive step with Ridders extrapolation and an error estimate.

    Supported by :func:`numdiffx.derivative`, :func:`numdiffx.jacobian`,
    :func:`numdiffx.gradient`, :func:`numdiffx.hessian` and :func:`numdiffx.jvp`.
    With ``full_output=True`` they return ``DiffResult(value, error, step, nfev,
    status)``: ``error`` is the estimate (true error <= estimate on >= 95% of the
    reference problems), ``step`` the step of the level the chosen estimate came from
    (value's shape) and ``status`` SUCCESS (tolerance met, or the estimate is limited
    by the round-off or noise of f, which smaller steps cannot improve),
    ERROR_INCREASED (the error grew before the tolerance was met; best value kept),
    MAX_ITERATIONS (the steps ran out; best value kept) or NON_FINITE (no finite
    estimate).

    Parameters
    ----------
    initial : float, optional
        First step ``h_0 = initial * max(|x_i|, typical_i)`` (``initial * typical_i``
        when ``scale_with_x=False``), rounded to a power of two. ``None`` picks it from
        the dtype and stencil: ``min(1, 0.1 * (eps / eps_float64)**(1/9)) / reach``,
        where ``reach`` is the stencil's largest offset (at least 1): 0.1 for central
        in float64, 0.93 in float32, half that for ``central(order=4)``. The step where
        round-off meets the truncation of a high-order extrapolation grows with
        ``eps``, so a low-precision tableau must start further out to reach its best
        accuracy.
    ratio : float
        Step ratio between levels (> 1). 2 is exact in binary arithmetic.
    max_steps : int
        Most levels (each costs ``len(stencil)`` evaluations per active entry, fewer
        when the stencil's points nest: with ``ratio=2`` a level of ``central(order=4)``
        takes its +-2 points from the +-1 points of the level before).
    max_order : int
        Most extrapolation columns kept in the tableau.
    atol, rtol : float
        Stop an element once ``error <= atol + rtol * |value|``. ``rtol=None`` means
        ``eps**0.75`` of the dtype (1.8e-12 in float64, 6.4e-6 in float32).
    noise : float, optional
        Relative noise level of f (e.g. 1e-8 for a simulation with 8 digits); without
        it, ``eps`` of the dtype. For a vector f (jacobian, jvp, hessian) the level is
        relative to ``max(|f_i|, max_j |f_j|)``: an output that is small by cancellation
        carries the round-off of the larger values it was computed from. Raises
        the round-off term of the estimate and the step floor
        ``noise**(1/(p+q)) * max(|x_i|, typical_i)`` below which no level is tried.
    bounds : (lo, hi), optional
        Domain of every input element: stencils never leave it. Elements whose central
        stencil would leave it switch to a one-sided stencil of the same order (or a
        smaller first step). Derivative, jacobian and gradient only.
    max_step : float, optional
        Upper limit of the first step.
    typical : float or sequence of float
        Typical magnitude of the inputs; a sequence gives one per flat input element.
    scale_with_x : bool
        Whether the first step grows with ``|x_i|``.
    safety : float
        Factor on the Ridders difference estimate (>= 1).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 1.0, 2.0])
    >>> r = nd.derivative(np.exp, x, step=nd.steps.adaptive(), full_output=True)
    >>> err = np.abs(r.value - np.exp(x))
    >>> bool(np.all(err <= 1e-13 * np.exp(x))), bool(np.all(err <= r.error))
    (True, True)
    """

    initial: float | None = None
    ratio: float = 2.0
    max_steps: int = 15
    max_order: int = 6
    atol: float = 0.0
    rtol: float | None = None
    noise: float | None = None
    bounds: tuple[float, float] | None = None
    max_step: float | None = None
    typical: float | tuple[float, ...] = 1.0
    scale_with_x: bool = True
    safety: float = 2.0

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.initial is not None:
            s(self, "initial", _positive_finite(self.initial, "adaptive(initial=...)",
                                                "adaptive(initial=0.1)"))
        s(self, "ratio", _positive_finite(self.ratio, "adaptive(ratio=...)",
                                          "adaptive(ratio=2.0)"))
        if self.ratio <= 1.0:
            raise ValueError(f"adaptive(ratio=...) must be > 1 (steps shrink by it); got "
                             f"{self.ratio!r}. Example: adaptive(ratio=2.0).")
        for name, least in (("max_steps", 2), ("max_order", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"adaptive({name}=...) must be an int; got {v!r}.")
            if v < least:
                raise ValueError(f"adaptive({name}=...) must be >= {least}; got {v}.")
        if isinstance(self.atol, bool) or not isinstance(self.atol, (int, float)) or not (
                math.isfinite(self.atol) and self.atol >= 0):
            raise ValueError(f"adaptive(atol=...) must be a finite number >= 0; got "
                             f"{self.atol!r}.")
        s(self, "atol", float(self.atol))
        if self.rtol is not None:
            s(self, "rtol", _positive_finite(self.rtol, "adaptive(rtol=...)",
                                             "adaptive(rtol=1e-10)"))
        if self.noise is not None:
            s(self, "noise", _positive_finite(self.noise, "adaptive(noise=...)",
                                              "adaptive(noise=1e-8)"))
        if self.max_step is not None:
            s(self, "max_step", _positive_finite(self.max_step, "adaptive(max_step=...)",
                                                 "adaptive(max_step=1e-3)"))
        if self.bounds is not None:
            b = self.bounds
            if not isinstance(b, (tuple, list)) or len(b) != 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in b):
                raise TypeError(f"adaptive(bounds=...) must be a pair (lo, hi) of numbers; got "
                                f"{b!r}. Example: adaptive(bounds=(0.0, float('inf'))).")
            lo, hi = float(b[0]), float(b[1])
            if math.isnan(lo) or math.isnan(hi) or not lo < hi:
                raise ValueError(f"adaptive(bounds=...) needs lo < hi; got {b!r}.")
            s(self, "bounds", (lo, hi))
        if isinstance(self.typical, (tuple, list)):
            s(self, "typical", tuple(_positive_finite(t, "adaptive(typical=[...])",
                                                      "adaptive(typical=(1.0, 1e-3))")
                                     for t in self.typical))
        else:
            s(self, "typical", _positive_finite(self.typical, "adaptive(typical=...)",
                                                "adaptive(typical=1.0)"))
        if not isinstance(self.scale_with_x, bool):
            raise TypeError(f"adaptive(scale_with_x=...) must be True or False; got "
                            f"{self.scale_with_x!r}.")
        s(self, "safety", _positive_finite(self.safety, "adaptive(safety=...)",
                                           "adaptive(safety=2.0)"))
        if self.safety < 1.0:
            raise ValueError(f"adaptive(safety=...) must be >= 1; got {self.safety!r}.")

    # -- the step rule interface ---------------------------------------------------------
    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        raise ValueError("steps.adaptive() is supported by derivative, jacobian, gradient, "
                         "hessian and jvp; for hvp use step='auto' or nd.steps.relative(...).")

    def scale(self, abs_x: Any, *, xp: Any) -> Any:
        """``max(|x_i|, typical_i)`` (or ``typical_i``), per element."""
        if isinstance(self.typical, tuple):
            if len(self.typical) != abs_x.shape[0]:
                raise ValueError(f"adaptive(typical=...) has {len(self.typical)} values but the "
                                 f"differentiated input has {abs_x.shape[0]} elements; give one "
                                 "per flat element or a single float.")
            typ = xp.asarray(np.asarray(self.typical), dtype=abs_x.dtype,
                             device=_device(abs_x))
        else:
            typ = xp.full_like(abs_x, self.typical)
        return typ if not self.scale_with_x else xp.maximum(abs_x, typ)

    def initial_for(self, dtype: Any, method: AbstractMethod, *, xp: Any) -> float:
        """``initial``, or the default of the dtype and stencil when it is None."""
        if self.initial is not None:
            return self.initial
        eps = float(xp.finfo(dtype).eps)
        lo, hi = offset_span(method)
        reach = max(1.0, abs(lo), abs(hi))
        return min(1.0, 0.1 * (eps / float(np.finfo(np.float64).eps)) ** (1.0 / 9.0)) / reach

    def first_step(self, abs_x: Any, method: AbstractMethod, *, xp: Any) -> Any:
        """``h_0`` per element, rounded to a power of two (exact halving)."""
        h = self.initial_for(abs_x.dtype, method, xp=xp) * self.scale(abs_x, xp=xp)
        if self.max_step is not None:
            h = xp.minimum(h, xp.asarray(self.max_step, dtype=h.dtype))
        return _pow2(xp, h)

    def tolerances(self, eps: float) -> tuple[float, float]:
        return self.atol, (eps ** 0.75 if self.rtol is None else self.rtol)


def _pow2(xp: Any, h: Any) -> Any:
    return xp.pow(xp.asarray(2.0, dtype=h.dtype), xp.round(xp.log2(h)))


def _device(x: Any) -> Any:
    from array_api_compat import device

    return device(x)


def error_powers(method: AbstractMethod, count: int) -> list[int]:
    """Exponents of the truncation-error series: p, p+2, ... (symmetric) or p, p+1, ..."""
    p = method.order
    if isinstance(method, ComplexStep):
        return [p + 2 * j for j in range(count)]
    assert isinstance(method, Stencil)
    offs = sorted(method.offsets)
    symmetric = offs == sorted(-o for o in offs)
    return [p + (2 if symmetric else 1) * j for j in range(count)]


def one_sided(method: AbstractMethod, side: int) -> Stencil:
    """Forward (side=+1) or backward (-1) stencil of the same derivative and order."""
    return (forward if side > 0 else backward)(order=method.order, deriv=method.deriv)


def offset_span(method: AbstractMethod) -> tuple[float, float]:
    if isinstance(method, ComplexStep):
        return 0.0, 0.0
    assert isinstance(method, Stencil)
    return float(min(method.offsets)), float(max(method.offsets))


def weight_sum(method: AbstractMethod) -> float:
    if isinstance(method, ComplexStep):
        return 1.0
    assert isinstance(method, Stencil)
    return float(sum(abs(w) for w in method.weights))


@dataclass
class Level:
    """What one level returns for the active entries (E_active rows)."""

    values: Any  # (Ea, M)
    ok: Any  # (Ea, M) bool
    h: Any  # (Ea,) steps used


def extrapolate(
    xp: Any,
    level_fn: Callable[[int, np.ndarray], Level],
    *,
    n_entries: int,
    n_out: int,
    dtype: Any,
    device: Any,
    rule: adaptive,
    factors: Any,
    roundoff: Any,
    floor: Any,
    deriv: int,
) -> tuple[Any, Any, Any, Any]:
    """Ridders' tableau over levels, per (entry, output). Returns value, error, step, status.

    ``factors`` (E, J) are ``ratio**power_j`` per entry (the entry's stencil decides the
    powers); ``roundoff`` (E, M) is ``noise * sum|w| * |f|``: the round-off of a level is
    ``roundoff / h**deriv``; ``floor`` (E,) the smallest step tried (0 for none).

    The state is kept only for the still-active (entry, output) elements, as flat
    vectors: elements leave it as soon as they finish, so later levels cost in
    proportion to what is left (zeros of a sparse Jacobian finish at the second level).
    """
    eps = float(xp.finfo(dtype).eps)
    atol, rtol = rule.tolerances(eps)
    sqrt_eps = math.sqrt(eps)
    n_cols = rule.max_order + 1
    size = n_entries * n_out

    def code(s: Status) -> Any:
        return xp.asarray(int(s), dtype=xp.int8)

    def full(value: float, kind: Any = None) -> Any:
        return xp.full((idx.shape[0],), value, dtype=dtype if kind is None else kind,
                       device=device)

    def dev(a: np.ndarray) -> Any:
        return xp.asarray(a, device=device)

    if size == 0:
        empty = xp.zeros((n_entries, n_out), dtype=dtype, device=device)
        return empty, empty, empty, xp.zeros((n_entries, n_out), dtype=xp.int8, device=device)
    roundoff_flat = xp.reshape(roundoff, (-1,))
    idx = np.arange(size, dtype=np.int64)  # active flat (entry * M + output) indices
    best, best_err, best_h = full(math.nan), full(math.inf), full(math.nan)
    nvalid = full(0, xp.int32)
    ngrow = full(0, xp.int32)
    limited = xp.zeros((size,), dtype=xp.bool, device=device)
    stop = full(int(Status.MAX_ITERATIONS), xp.int8)
    prev: list[Any] = []
    finished: list[tuple[np.ndarray, Any, Any, Any, Any, Any]] = []

    def retire(sel: np.ndarray, status: Any) -> None:
        s = dev(sel)
        finished.append((idx[sel], xp.take(best, s, axis=0), xp.take(best_err, s, axis=0),
                         xp.take(best_h, s, axis=0), xp.take(limited, s, axis=0),
                         xp.take(status, s, axis=0)))

    for k in range(rule.max_steps):
        if idx.shape[0] == 0:
            break
        ent = idx // n_out  # sorted, since idx is
        starts = np.empty(ent.shape[0], dtype=bool)
        starts[:1] = True
        np.not_equal(ent[1:], ent[:-1], out=starts[1:])
        rows = ent[starts]
        lev = level_fn(k, rows)
        rowpos = np.cumsum(starts) - 1
        flat = dev(rowpos * n_out + idx % n_out)
        values = xp.take(xp.reshape(lev.values, (-1,)), flat, axis=0)
        ok = xp.take(xp.reshape(lev.ok, (-1,)), flat, axis=0)
        h = xp.take(lev.h, dev(rowpos), axis=0)
        ent_d = dev(ent)
        below = (h < xp.take(floor, ent_d, axis=0)) if k > 0 else xp.zeros_like(ok)
        ok = ok & ~below
        h_q = xp.abs(h) ** deriv
        noise = xp.take(roundoff_flat, dev(idx), axis=0) / xp.where(
            h_q == 0, xp.asarray(1.0, dtype=dtype), h_q)
        nvalid = xp.where(ok, nvalid + 1, xp.zeros_like(nvalid))
        row = [xp.where(ok, values, xp.asarray(math.nan, dtype=dtype))]
        amp: Any = 1.0
        new_err = full(math.inf)
        fac_rows = xp.take(factors, ent_d, axis=0) if k > 0 else None
        for j in range(1, min(k + 1, n_cols)):
            assert fac_rows is not None
            fac = fac_rows[:, j - 1]
            a = row[j - 1] + (row[j - 1] - prev[j - 1]) / (fac - 1.0)
            err = xp.maximum(xp.abs(a - row[j - 1]), xp.abs(a - prev[j - 1]))
            if j < len(prev):
                # the same column one level up: two lower-order values can agree by
                # coincidence (a truncation error changing sign between two large steps);
                # a third, independent value must agree too
                err = xp.maximum(err, xp.where(nvalid > j + 1, xp.abs(a - prev[j]),
                                               xp.zeros_like(err)))
            amp = amp * (fac + 1.0) / (fac - 1.0)  # noise gain of one Richardson step
            est = rule.safety * err + amp * noise
            valid = (nvalid > j) & xp.isfinite(est)
            better = valid & (est < best_err)
            best = xp.where(better, a, best)
            best_err = xp.where(better, est, best_err)
            best_h = xp.where(better, h, best_h)
            limited = xp.where(better, rule.safety * err <= amp * noise, limited)
            new_err = xp.where(valid, est, new_err)
            row.append(a)
        prev = row
        # converged: tolerance met, or the extrapolation differences are already below
        # the round-off of f (smaller steps could only make the estimate worse)
        converged = (best_err <= atol + rtol * xp.abs(best)) | limited
        # error increased: the newest level's estimates exceed twice the best for two
        # levels in a row. One level is not enough: with a large first step (float32)
        # the tableau is still pre-asymptotic there and its estimates jump about.
        growing = (new_err > 2.0 * best_err) & xp.isfinite(best_err) & (nvalid > 2) & (
            best_err <= sqrt_eps * xp.abs(best))
        ngrow = xp.where(growing, ngrow + 1, xp.zeros_like(ngrow))
        grew = ~converged & (ngrow >= 2)
        stop = xp.where(converged, code(Status.SUCCESS),
                        xp.where(grew, code(Status.ERROR_INCREASED),
                                 xp.where(below, code(Status.MAX_ITERATIONS), stop)))
        done = _host(converged | grew | below)
        if done.any():
            retire(np.flatnonzero(done), stop)
            keep = np.flatnonzero(~done)
            kd = dev(keep)
            best, best_err, best_h, limited, stop, nvalid, ngrow = (
                xp.take(a, kd, axis=0)
                for a in (best, best_err, best_h, limited, stop, nvalid, ngrow))
            prev = [xp.take(a, kd, axis=0) for a in prev]
            idx = idx[keep]
    if idx.shape[0]:
        retire(np.arange(idx.shape[0]), stop)
    order = np.argsort(np.concatenate([f[0] for f in finished]), kind="stable")
    take = dev(order)

    def assemble(i: int) -> Any:
        return xp.reshape(xp.take(xp.concat([f[i] for f in finished], axis=0), take, axis=0),
                          (n_entries, n_out))

    best, best_err, best_h, limited, stop = (assemble(i) for i in range(1, 6))
    final = xp.where(~xp.isfinite(best_err), code(Status.NON_FINITE),
                     xp.where((best_err <= atol + rtol * xp.abs(best)) | limited,
                              code(Status.SUCCESS), stop))
    best = xp.where(final == int(Status.NON_FINITE), xp.asarray(math.nan, dtype=dtype), best)
    return best, best_err, best_h, final


def group_methods(method: AbstractMethod, rule: adaptive, x: Any, h0: Any,
                  xp: Any) -> tuple[list[AbstractMethod], np.ndarray, Any]:
    """Per element: which stencil (0 the given one, 1 forward, 2 backward) and h_0.

    Without bounds every element uses ``method``. With bounds, an element whose stencil
    would leave ``[lo, hi]`` at its first step switches to the one-sided stencil of the
    side with more room; its first step shrinks until that stencil fits.
    """
    methods: list[AbstractMethod] = [method]
    n = x.shape[0]
    if rule.bounds is None or isinstance(method, ComplexStep):
        return methods, np.zeros(n, dtype=np.int64), h0
    lo, hi = rule.bounds
    methods = [method, one_sided(method, +1), one_sided(method, -1)]
    spans = [offset_span(m) for m in methods]
    omin, omax = spans[0]
    fits = (x + omin * h0 >= lo) & (x + omax * h0 <= hi)
    room_up = hi - x
    room_down = x - lo
    use_fwd = ~fits & (room_up >= room_down)
    group = xp.where(fits, xp.asarray(0, dtype=xp.int64),
                     xp.where(use_fwd, xp.asarray(1, dtype=xp.int64),
                              xp.asarray(2, dtype=xp.int64)))
    # shrink the one-sided first step to fit its side; near a bound f usually varies on
    # the scale of the distance to it (log near 0), so start at `initial` times that
    fmax = spans[1][1]
    bmin = -spans[2][0]
    frac = rule.initial_for(x.dtype, method, xp=xp)
    h_f = xp.minimum(h0, xp.minimum(room_up / fmax, frac * room_down))
    h_b = xp.minimum(h0, xp.minimum(room_down / bmin, frac * room_up))
    h0 = xp.where(fits, h0, xp.where(use_fwd, h_f, h_b))
    # rounding the step down to a power of two keeps it inside
    h0 = xp.pow(xp.asarray(2.0, dtype=h0.dtype), xp.floor(xp.log2(h0)))
    return methods, _host(group).astype(np.int64), h0


def entry_factors(methods: Sequence[AbstractMethod], group: np.ndarray, rule: adaptive,
                  xp: Any, dtype: Any, device: Any) -> Any:
    """(E, max_order) array of ``ratio**power_j`` per entry."""
    table = np.array([[rule.ratio ** p for p in error_powers(m, rule.max_order)]
                      for m in methods], dtype=np.float64)
    return xp.asarray(table[group], dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------
# drivers used by the public operations (api.py hands over its validated problem)
# ---------------------------------------------------------------------------------------
def _real_problem(prob: Any) -> None:
    xp = prob.xp
    if not xp.isdtype(prob.x_flat.dtype, "real floating") or not xp.isdtype(
            prob.f0.dtype, "real floating"):
        raise ValueError("steps.adaptive() needs real floating inputs and a real-valued f; use "
                         "step='auto' for complex inputs or outputs.")


def _setup(prob: Any, rule: adaptive, method: AbstractMethod, x: Any,
           h0: Any) -> tuple[list[AbstractMethod], np.ndarray, Any, Any, float]:
    xp = prob.xp
    methods, group, h0 = group_methods(method, rule, x, h0, xp)
    eps = float(xp.finfo(x.dtype).eps)
    level = max(rule.noise or 0.0, eps)
    if rule.noise is not None:
        p, q = method.order, method.deriv
        floor = rule.noise ** (1.0 / (p + q)) * rule.scale(xp.abs(x), xp=xp)
    else:
        floor = xp.zeros_like(x)
    return methods, group, h0, floor, level


def _weights(methods: Sequence[AbstractMethod], group: np.ndarray, xp: Any, dtype: Any,
             device: Any) -> Any:
    w = np.array([weight_sum(m) for m in methods], dtype=np.float64)[group]
    return xp.asarray(w, dtype=dtype, device=device)


class NestedPoints:
    """Reuses f at the points two consecutive levels share.

    With step ratio ``r`` the point ``o * h_(k+1)`` of level k+1 is the point
    ``(o / r) * h_k`` of level k whenever ``o / r`` is also an offset of the stencil
    (``central(order=4)``: +-2 at level k+1 are +-1 at level k; ``forward(order=2)``: 2
    is 1). A level then evaluates only its new offsets and takes the others from the
    level before, for every row whose step halved exactly (steps are powers of two; a
    step rounded against a large ``x`` is evaluated afresh). ``central`` (+-1) has none
    to share, and ``enabled`` is False.

    ``level(keys, h, run_points, denom)``: ``keys`` (host, sorted) name the rows (an
    entry, a colour, the one direction) so that a row finds its values of the previous
    level; ``run_points(offsets, positions)`` returns the raw ``f(x + o h d) - f(x)``
    of the rows at ``positions``, (e, len(offsets), M), and their status (e, M).
    The result equals the stencil's own value ``sum_o w_o (f(x + o h d) - f(x)) /
    denom`` (same order of operations).
    """

    def __init__(self, method: AbstractMethod, ratio: float, xp: Any) -> None:
        from fractions import Fraction

        self.xp = xp
        self.ratio = ratio
        exact = list(method.offsets) if isinstance(method, Stencil) else []
        weights = list(method.float_weights) if isinstance(method, Stencil) else []
        r = Fraction(ratio)
        keep = [i for i, o in enumerate(exact) if o != 0]
        self.offsets = [float(exact[i]) for i in keep]
        self.weights = [weights[i] for i in keep]
        nonzero = [exact[i] for i in keep]
        #: offset index at level k+1 -> offset index at level k with the same point
        self.source = {i: nonzero.index(o / r) for i, o in enumerate(nonzero)
                       if o / r in nonzero}
        self.new = [i for i in range(len(nonzero)) if i not in self.source]
        self._prev: tuple[np.ndarray, np.ndarray | None, dict[int, Any], Any] | None = None
        #: the caller's own state between levels (the sparse driver's column steps)
        self.memo: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.source)

    def level(self, keys: np.ndarray, h: Any,
              run_points: Callable[[list[float], np.ndarray], tuple[Any, Any]],
              denom: Any | None, nests: np.ndarray | None = None,
              together: bool = False) -> tuple[Any, Any]:
        """``nests`` (per key, host) replaces the test that ``h`` halved exactly where
        a key moves several elements (a colour). ``together``: every call moves all
        rows anyway (an elementwise f), so one row evaluated afresh makes all fresh."""
        xp = self.xp
        e = keys.shape[0]
        h_host = None if nests is not None else _host(h).astype(np.float64)
        reuse = np.zeros(e, dtype=bool)
        if self._prev is not None:
            pkeys, ph, _, pstat = self._prev
            pos = np.clip(np.searchsorted(pkeys, keys), 0, max(pkeys.shape[0] - 1, 0))
            # a row whose previous level failed anywhere (a point outside the domain)
            # is evaluated afresh: its shared points may be the failing ones
            was_ok = _host(xp.all(pstat == int(Status.SUCCESS), axis=1))
            reuse = (pkeys.shape[0] > 0) & (pkeys[pos] == keys) & was_ok[pos]
            if nests is not None:
                reuse &= nests
            else:
                assert ph is not None and h_host is not None
                reuse &= ph[pos] == self.ratio * h_host
        if together and not reuse.all():
            reuse[:] = False
        fresh, kept = np.flatnonzero(~reuse), np.flatnonzero(reuse)
        per_offset: list[list[Any]] = [[] for _ in self.offsets]
        statuses = []
        if fresh.size:  # every offset
            v, st = run_points(self.offsets, fresh)
            for i in range(len(self.offsets)):
                per_offset[i].append(v[:, i, :])
            statuses.append(st)
        if kept.size:  # the new offsets, and the shared ones from the level before
            assert self._prev is not None
            v, st = run_points([self.offsets[i] for i in self.new], kept)
            for j, i in enumerate(self.new):
                per_offset[i].append(v[:, j, :])
            pkeys, _, pvals, _ = self._prev
            at = xp.asarray(np.searchsorted(pkeys, keys[kept]), device=_device(v))
            for i, src in self.source.items():
                per_offset[i].append(xp.take(pvals[src], at, axis=0))
            statuses.append(st)  # the shared points all succeeded (was_ok)
        order = np.argsort(np.concatenate([fresh, kept]), kind="stable")
        back = xp.asarray(order, device=_device(v))

        def rows_in_order(parts: list[Any]) -> Any:
            return xp.take(xp.concat(parts, axis=0), back, axis=0) if len(parts) > 1 else (
                parts[0])

        values = [rows_in_order(p) for p in per_offset]
        status = rows_in_order(statuses)
        with np.errstate(all="ignore"):  # inf - inf where f is not finite: status says so
            acc = None
            for g, w in zip(values, self.weights):
                term = g * w
                acc = term if acc is None else acc + term
            assert acc is not None
            if denom is not None:
                acc = acc / xp.expand_dims(denom, 1)
        self._prev = (keys, h_host, {src: values[src] for src in set(self.source.values())},
                      status)
        ok = status == int(Status.SUCCESS)
        return xp.where(ok, acc, xp.asarray(math.nan, dtype=acc.dtype)), status


def _step_power(xp: Any, h: Any, q: int) -> Any:
    """``h**q``, 1 where it is 0 (the engine's divisor: the status flags a lost step)."""
    p = h ** q
    return xp.where(p == 0, xp.asarray(1.0, dtype=p.dtype), p)


def _scatter_rows(xp: Any, parts: list[tuple[np.ndarray, Any, Any]], rows: np.ndarray,
                  device: Any) -> tuple[Any, Any]:
    """Concatenate per-group results and put them back in the order of ``rows``."""
    if len(parts) == 1:
        return parts[0][1], parts[0][2]
    sel = np.concatenate([p[0] for p in parts])
    order = np.empty(sel.shape[0], dtype=np.int64)
    where = {int(r): i for i, r in enumerate(sel)}
    order[:] = [where[int(r)] for r in rows]
    take = xp.asarray(order, device=device)
    vals = xp.concat([p[1] for p in parts], axis=0)
    stat = xp.concat([p[2] for p in parts], axis=0)
    return xp.take(vals, take, axis=0), xp.take(stat, take, axis=0)


def _f_scale(xp: Any, f0: Any) -> Any:
    """Per output of a vector f, the magnitude its round-off is taken proportional to.

    ``max(|f_i|, max_j |f_j|)``: an output that is small because of cancellation (the
    last layer of a network, a residual) is computed from intermediate values of the
    size of the other outputs and carries their round-off. Scoring it by ``|f_i|``
    alone made estimates at tiny steps look good by luck (float32 tanh network: true
    error 1.5e-5 where 5e-7 was claimed). Elementwise derivatives keep ``|f_i|``: there
    every output is its own function.
    """
    a = xp.abs(f0)
    if a.shape[0] == 0:
        return a
    top = xp.max(xp.where(xp.isfinite(a), a, xp.zeros_like(a)))
    return xp.maximum(a, top)


def basis_adaptive(prob: Any, method: AbstractMethod, rule: adaptive,
                   run: Callable[..., tuple[Any, Any]]
                   ) -> tuple[Any, Any, Any, Any]:
    """Adaptive Jacobian columns: (values, error, step, status), each (n, M)."""
    from .engine import BasisDirection, representable_steps

    _real_problem(prob)
    xp, x = prob.xp, prob.x_flat
    dtype, device = x.dtype, _device(x)
    n, m_out = x.shape[0], prob.f0.shape[0]
    h0 = rule.first_step(xp.abs(x), method, xp=xp)
    methods, group, h0, floor, level = _setup(prob, rule, method, x, h0)
    w = _weights(methods, group, xp, dtype, device)
    roundoff = level * xp.expand_dims(w, 1) * xp.expand_dims(_f_scale(xp, prob.f0), 0)

    nested = [NestedPoints(m, rule.ratio, xp) for m in methods]

    def level_fn(k: int, rows: np.ndarray) -> Level:
        hk = representable_steps(xp, x, h0 / rule.ratio ** k)
        parts = []
        for g, m in enumerate(methods):
            sel = rows[group[rows] == g]
            if not sel.size:
                continue
            if nested[g].enabled:
                h_sel = xp.take(hk, xp.asarray(sel, device=device), axis=0)

                def points(offs: list[float], pos: np.ndarray, m: AbstractMethod = m,
                           sel: np.ndarray = sel, hk: Any = hk) -> tuple[Any, Any]:
                    return run([BasisDirection(m, hk, 0)], sel[pos].reshape(-1, 1), offs)

                v, s = nested[g].level(sel, h_sel, points, _step_power(xp, h_sel, m.deriv))
            else:
                v, s = run([BasisDirection(m, hk, 0)], sel.reshape(-1, 1))
            parts.append((sel, v, s))
        vals, stat = _scatter_rows(xp, parts, rows, device)
        h_rows = xp.take(hk, xp.asarray(rows, device=device), axis=0)
        return Level(vals, stat == int(Status.SUCCESS), h_rows)

    return extrapolate(xp, level_fn, n_entries=n, n_out=m_out, dtype=dtype, device=device,
                       rule=rule, factors=entry_factors(methods, group, rule, xp, dtype, device),
                       roundoff=roundoff, floor=floor, deriv=method.deriv)


def read_nonzeros(prob: Any, run: Callable[..., tuple[Any, Any]],
                  method: AbstractMethod, h: Any, pattern: Any, nz: np.ndarray,
                  colour_dev: Any, nested: NestedPoints | None = None) -> tuple[Any, Any]:
    """Differences of the nonzeros ``nz`` (indices into the pattern), divided by their
    column's step: (values, status), each (nz.size,).

    Only the columns of ``nz`` move (the others get step 0), by colour: one group
    direction per colour they use (Curtis-Powell-Reid: no two columns of a colour share
    a row, so each nonzero reads its colour's difference at its row). ``colour_dev`` is
    ``pattern.colours`` on the device, copied once by the caller. ``nested`` (kept by
    the caller across levels) reuses a colour's shared points when every column it
    moves halved its step exactly; the columns a colour moves only ever drop out, and
    a dropped column's rows are no longer read (no other column of its colour has them).
    """
    from .engine import GroupDirection

    xp, x = prob.xp, prob.x_flat
    device = _device(x)
    n, m_out = x.shape[0], prob.f0.shape[0]
    colours = pattern.colours
    cols = pattern.cols[nz]
    moving = np.zeros(n, dtype=bool)
    moving[cols] = True
    used = np.unique(colours[cols])
    h_move = xp.where(xp.asarray(moving, device=device), h, xp.zeros_like(h))
    direction = GroupDirection(method, h_move, colour_dev, 0)
    if nested is not None and nested.enabled:
        h_host = _host(h_move).astype(np.float64)
        halved = np.ones(n, dtype=bool) if nested.memo is None else (
            nested.memo == nested.ratio * h_host)
        nests = ~np.isin(used, colours[moving & ~halved])
        nested.memo = h_host
        v, s = nested.level(used, None, lambda offs, pos: run(
            [direction], used[pos].reshape(-1, 1), offs), None, nests=nests)
    else:
        v, s = run([direction], used.reshape(-1, 1))
    position = np.full(int(colours.max(initial=0)) + 1, -1, dtype=np.int64)
    position[used] = np.arange(used.size)
    pick = xp.asarray(position[colours[cols]] * m_out + pattern.rows[nz], device=device)
    h_nz = xp.take(h, xp.asarray(cols, device=device), axis=0)
    lost = h_nz == 0
    safe = xp.where(lost, xp.ones_like(h_nz), h_nz)
    d = xp.take(xp.reshape(v, (-1,)), pick, axis=0) / safe ** method.deriv
    st = xp.where(lost, xp.asarray(int(Status.STEP_TOO_SMALL), dtype=xp.int8),
                  xp.take(xp.reshape(s, (-1,)), pick, axis=0))
    return d, st


def sparse_adaptive(prob: Any, method: AbstractMethod, rule: adaptive, pattern: Any,
                    run: Callable[..., tuple[Any, Any]]
                    ) -> tuple[Any, Any, Any, Any]:
    """Adaptive sparse Jacobian: (values, error, step, status), each (nnz, 1), pattern order.

    The tableau holds one element per stored nonzero, not per (column, output): a level
    perturbs, per colour still in play, only the columns that still have an unfinished
    nonzero (one group direction per colour, Curtis-Powell-Reid), and reads each nonzero
    off its colour's difference divided by its column's step. Cost per level: colours x
    stencil points evaluations of f and O(nnz) work.
    """
    from .engine import representable_steps

    _real_problem(prob)
    xp, x = prob.xp, prob.x_flat
    dtype, device = x.dtype, _device(x)
    cols, rows_nz = pattern.cols, pattern.rows
    h0 = rule.first_step(xp.abs(x), method, xp=xp)
    methods, group, h0, floor, level = _setup(prob, rule, method, x, h0)
    group_nz = group[cols]
    w = _weights(methods, group_nz, xp, dtype, device)
    f_nz = xp.take(_f_scale(xp, prob.f0), xp.asarray(rows_nz, device=device), axis=0)
    roundoff = level * xp.expand_dims(w * f_nz, 1)
    cols_dev = xp.asarray(cols, device=device)
    colour_dev = xp.asarray(pattern.colours, device=device)
    nested = [NestedPoints(m, rule.ratio, xp) for m in methods]

    def level_fn(k: int, active: np.ndarray) -> Level:
        hk = representable_steps(xp, x, h0 / rule.ratio ** k)
        vals = xp.full((active.shape[0],), math.nan, dtype=dtype, device=device)
        stat = xp.full((active.shape[0],), int(Status.NON_FINITE), dtype=xp.int8,
                       device=device)
        for g, m in enumerate(methods):
            mine = np.flatnonzero(group_nz[active] == g)
            if not mine.size:
                continue
            d, st = read_nonzeros(prob, run, m, hk, pattern, active[mine], colour_dev,
                                  nested[g])
            vals = _put(xp, vals, mine, d)
            stat = _put(xp, stat, mine, st)
        h_act = xp.take(hk, xp.take(cols_dev, xp.asarray(active, device=device), axis=0),
                        axis=0)
        return Level(xp.expand_dims(vals, 1), xp.expand_dims(stat == int(Status.SUCCESS), 1),
                     h_act)

    return extrapolate(xp, level_fn, n_entries=cols.shape[0], n_out=1, dtype=dtype,
                       device=device, rule=rule,
                       factors=entry_factors(methods, group_nz, rule, xp, dtype, device),
                       roundoff=roundoff, floor=xp.take(floor, cols_dev, axis=0),
                       deriv=method.deriv)


def _put(xp: Any, target: Any, at: np.ndarray, values: Any) -> Any:
    """``target`` with ``target[at] = values``, built from take/where (jax arrays are
    immutable; array-api-strict has no scatter)."""
    if at.shape[0] == target.shape[0]:
        return values
    inv = np.zeros(target.shape[0], dtype=np.int64)
    inv[at] = np.arange(at.shape[0])
    mask = np.zeros(target.shape[0], dtype=bool)
    mask[at] = True
    dev = _device(target)
    spread = xp.take(values, xp.asarray(inv, device=dev), axis=0)
    return xp.where(xp.asarray(mask, device=dev), spread, target)


def elementwise_adaptive(prob: Any, method: AbstractMethod, rule: adaptive,
                         run: Callable[..., tuple[Any, Any]]
                         ) -> tuple[Any, Any, Any, Any]:
    """Adaptive elementwise derivative: (values, error, step, status), each (n, 1)."""
    from .engine import representable_steps

    _real_problem(prob)
    xp, x = prob.xp, prob.x_flat
    dtype, device = x.dtype, _device(x)
    n = x.shape[0]
    h0 = rule.first_step(xp.abs(x), method, xp=xp)
    methods, group, h0, floor, level = _setup(prob, rule, method, x, h0)
    w = _weights(methods, group, xp, dtype, device)
    roundoff = level * xp.expand_dims(w * xp.abs(prob.f0), 1)
    group_dev = xp.asarray(group, device=device)

    nested = [NestedPoints(m, rule.ratio, xp) for m in methods]
    everyone = np.arange(n)

    def level_fn(k: int, rows: np.ndarray) -> Level:
        hk = representable_steps(xp, x, h0 / rule.ratio ** k)
        vals = stat = None
        for g, m in enumerate(methods):
            if not np.any(group[rows] == g):
                continue
            # only this group's elements move; the others get step 0 (f(x), discarded)
            hm = xp.where(group_dev == g, hk, xp.zeros_like(hk))
            if nested[g].enabled:  # f is elementwise: every call moves all n elements

                def points(offs: list[float], pos: np.ndarray, m: AbstractMethod = m,
                           hm: Any = hm) -> tuple[Any, Any]:
                    raw, st = run(m, hm, offs)
                    at = xp.asarray(pos, device=device)
                    return (xp.expand_dims(xp.take(raw, at, axis=0), 2),
                            xp.expand_dims(xp.take(st, at, axis=0), 1))

                v, s = nested[g].level(everyone, hm, points, _step_power(xp, hm, m.deriv),
                                       together=True)
                v, s = v[:, 0], s[:, 0]
            else:
                v, s = run(m, hm)
            mine = group_dev == g
            vals = v if vals is None else xp.where(mine, v, vals)
            stat = s if stat is None else xp.where(mine, s, stat)
        assert vals is not None and stat is not None
        take = xp.asarray(rows, device=device)
        return Level(xp.expand_dims(xp.take(vals, take, axis=0), 1),
                     xp.expand_dims(xp.take(stat, take, axis=0) == int(Status.SUCCESS), 1),
                     xp.take(hk, take, axis=0))

    return extrapolate(xp, level_fn, n_entries=n, n_out=1, dtype=dtype, device=device,
                       rule=rule, factors=entry_factors(methods, group, rule, xp, dtype, device),
                       roundoff=roundoff, floor=floor, deriv=method.deriv)


def vector_adaptive(prob: Any, method: AbstractMethod, rule: adaptive, v: Any,
                    run: Callable[..., tuple[Any, Any]]
                    ) -> tuple[Any, Any, Any, Any]:
    """Adaptive directional derivative along ``v``: (values, error, step, status), (1, M)."""
    from .engine import VectorDirection

    _real_problem(prob)
    if rule.bounds is not None or isinstance(rule.typical, tuple):
        raise ValueError("adaptive(bounds=...) and per-element typical=(...) apply to basis "
                         "directions; use nd.jacobian(...) @ v for a restricted domain.")
    xp, x = prob.xp, prob.x_flat
    dtype, device = x.dtype, _device(x)
    scale = xp.max(xp.abs(x)) if x.shape[0] else xp.asarray(0.0, dtype=dtype)
    h0 = rule.first_step(xp.reshape(scale, (1,)), method, xp=xp)
    vmax = xp.max(xp.abs(v)) if v.shape[0] else xp.asarray(1.0, dtype=dtype)
    vmax = xp.where(vmax == 0, xp.asarray(1.0, dtype=dtype), vmax)
    t0 = h0 / vmax
    methods, group, t0, floor, level = _setup(prob, rule, method, xp.reshape(scale, (1,)), t0)
    w = _weights(methods, group, xp, dtype, device)
    roundoff = level * xp.expand_dims(w, 1) * xp.expand_dims(_f_scale(xp, prob.f0), 0)

    nested = NestedPoints(method, rule.ratio, xp)
    no_basis = np.zeros((1, 0), dtype=np.int64)

    def level_fn(k: int, rows: np.ndarray) -> Level:
        tk = t0 / rule.ratio ** k
        direction = VectorDirection(method, xp.reshape(tk, ()), v)
        if nested.enabled:
            vals, stat = nested.level(np.zeros(1, dtype=np.int64), tk,
                                      lambda offs, pos: run([direction], no_basis, offs),
                                      _step_power(xp, tk, method.deriv))
        else:
            vals, stat = run([direction], no_basis)
        return Level(vals, stat == int(Status.SUCCESS), tk)

    return extrapolate(xp, level_fn, n_entries=1, n_out=prob.f0.shape[0], dtype=dtype,
                       device=device, rule=rule,
                       factors=entry_factors(methods, group, rule, xp, dtype, device),
                       roundoff=roundoff, floor=floor / vmax, deriv=method.deriv)


# ---------------------------------------------------------------------------------------
# the error-bound step: cheaper than adaptation
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class bound(AbstractStepRule):  # noqa: N801 - public lower-case constructor
    """Per-element step minimising the error bound ``C_t M h**p + C_r eps_f / h**q``.

    ``M = |f^(p+q)|`` is estimated per element from one extra central stencil of order
    2 for the ``(p+q)``-th derivative at step ``eps**(1/(p+q+2)) * max(|x_i|, typical)``
    (FiniteDifferences.jl's bound estimator, Stepleman & Winarsky 1979, Gill, Murray,
    Saunders & Wright 1983); ``eps_f = max(noise, eps) * |f(x)|``. The cost is
    ``p + q + 1`` extra evaluations per element (4 for central). With
    ``full_output=True`` the error is twice that bound. Supported by
    :func:`numdiffx.derivative`, :func:`numdiffx.jacobian` and :func:`numdiffx.gradient`
    (real stencils; a Jacobian uses one step per input, from the largest ``M`` and
    ``|f|`` over the outputs).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 1.0, 2.0])
    >>> d = nd.derivative(np.exp, x, step=nd.steps.bound())
    >>> bool(np.all(np.abs(d - np.exp(x)) <= 1e-10 * np.exp(x)))
    True
    """

    typical: float = 1.0
    scale_with_x: bool = True
    noise: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "typical", _positive_finite(
            self.typical, "bound(typical=...)", "bound(typical=1.0)"))
        if self.noise is not None:
            object.__setattr__(self, "noise", _positive_finite(
                self.noise, "bound(noise=...)", "bound(noise=1e-8)"))
        if not isinstance(self.scale_with_x, bool):
            raise TypeError(f"bound(scale_with_x=...) must be True or False; got "
                            f"{self.scale_with_x!r}.")

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        raise ValueError("steps.bound() is supported by derivative, jacobian and gradient; "
                         "for hessian, hvp and jvp use step='auto' or nd.steps.adaptive().")

    def scale(self, abs_x: Any, *, xp: Any) -> Any:
        typ = xp.full_like(abs_x, self.typical)
        return typ if not self.scale_with_x else xp.maximum(abs_x, typ)


def _bound_constants(method: AbstractMethod) -> tuple[int, int, float, float, Stencil]:
    if not isinstance(method, Stencil):
        raise ValueError("steps.bound() needs a real stencil (the complex step has no "
                         "round-off term to balance); use step='auto' with complex_step.")
    from .stencils import central

    p, q = method.order, method.deriv
    c_r = float(sum(abs(w) for w in method.weights))
    c_t = float(abs(sum(w * o ** (p + q) for w, o in zip(method.weights, method.offsets))))
    c_t /= math.factorial(p + q)
    return p, q, c_r, c_t, central(order=2, deriv=p + q)


def _bound_steps(xp: Any, x: Any, rule: bound, method: AbstractMethod, m_abs: Any,
                 f_abs: Any) -> Any:
    """Minimiser of the bound per element, clamped to [16 eps, 0.1] * scale."""
    p, q, c_r, c_t, _ = _bound_constants(method)
    eps = float(xp.finfo(x.dtype).eps)
    level = max(rule.noise or 0.0, eps)
    scale = rule.scale(xp.abs(x), xp=xp)
    tiny = xp.asarray(float(xp.finfo(x.dtype).smallest_normal), dtype=x.dtype)
    m_safe = xp.where(xp.isfinite(m_abs), m_abs, xp.zeros_like(m_abs))
    ratio = (q * c_r * level * f_abs + tiny) / (p * c_t * m_safe + tiny)
    h = ratio ** (1.0 / (p + q))
    hmax = 0.1 * scale
    hmin = 16.0 * eps * scale
    h = xp.minimum(xp.maximum(h, hmin), hmax)
    return _pow2(xp, h)


def _bound_error(xp: Any, method: AbstractMethod, rule: bound, m_abs: Any, f_abs: Any,
                 h: Any) -> Any:
    p, q, c_r, c_t, _ = _bound_constants(method)
    eps = float(xp.finfo(h.dtype).eps)
    level = max(rule.noise or 0.0, eps)
    return 2.0 * (c_t * m_abs * h ** p + c_r * level * f_abs / h ** q)


def basis_bound(prob: Any, method: AbstractMethod, rule: bound,
                run: Callable[..., tuple[Any, Any]]
                ) -> tuple[Any, Any, Any, Any]:
    """Jacobian columns with the error-bound step: (values, error, step, status), (n, M)."""
    from .engine import BasisDirection, representable_steps

    _real_problem(prob)
    xp, x = prob.xp, prob.x_flat
    n = x.shape[0]
    p, q, _, _, high = _bound_constants(method)
    eps = float(xp.finfo(x.dtype).eps)
    entries = np.arange(n).reshape(n, 1)
    big = representable_steps(xp, x, _pow2(xp, eps ** (1.0 / (p + q + 2))
                                           * rule.scale(xp.abs(x), xp=xp)))
    m_vals, _ = run([BasisDirection(high, big, 0)], entries)  # (n, M)
    m_abs = xp.abs(m_vals)
    f_abs = xp.expand_dims(xp.abs(prob.f0), 0)
    m_max = xp.max(xp.where(xp.isfinite(m_abs), m_abs, xp.zeros_like(m_abs)), axis=1) if (
        m_abs.shape[1]) else xp.zeros_like(x)
    f_max = xp.max(f_abs) if f_abs.shape[1] else xp.asarray(0.0, dtype=x.dtype)
    h = representable_steps(xp, x, _bound_steps(xp, x, rule, method, m_max, f_max))
    values, status = run([BasisDirection(method, h, 0)], entries)
    h2 = xp.expand_dims(h, 1)
    m_safe = xp.where(xp.isfinite(m_abs), m_abs, xp.zeros_like(m_abs))
    error = _bound_error(xp, method, rule, m_safe, f_abs,
                         xp.where(h2 == 0, xp.ones_like(h2), h2))
    error = xp.where(status == 0, error, xp.asarray(math.nan, dtype=error.dtype))
    return values, error, xp.broadcast_to(h2, values.shape), status


def sparse_bound(prob: Any, method: AbstractMethod, rule: bound, pattern: Any,
                 run: Callable[..., tuple[Any, Any]]
                 ) -> tuple[Any, Any, Any, Any]:
    """Sparse Jacobian with the error-bound step: 4-tuple of (nnz,) arrays, pattern order.

    As :func:`basis_bound` (one step per column from its largest ``M`` and ``max |f|``),
    evaluated by colour: two group directions per colour, O(nnz) memory.
    """
    from .engine import representable_steps

    _real_problem(prob)
    xp, x = prob.xp, prob.x_flat
    device = _device(x)
    p, q, _, _, high = _bound_constants(method)
    eps = float(xp.finfo(x.dtype).eps)
    nz = np.arange(pattern.cols.shape[0])
    big = representable_steps(xp, x, _pow2(xp, eps ** (1.0 / (p + q + 2))
                                           * rule.scale(xp.abs(x), xp=xp)))
    colour_dev = xp.asarray(pattern.colours, device=device)
    m_vals, _ = read_nonzeros(prob, run, high, big, pattern, nz, colour_dev)
    m_abs = xp.abs(m_vals)
    m_safe = xp.where(xp.isfinite(m_abs), m_abs, xp.zeros_like(m_abs))
    m_col = np.zeros(x.shape[0], dtype=np.float64)  # largest M of each column, on the host
    np.maximum.at(m_col, pattern.cols, _host(m_safe).astype(np.float64))
    f_abs = xp.abs(prob.f0)
    f_max = xp.max(f_abs) if f_abs.shape[0] else xp.asarray(0.0, dtype=x.dtype)
    m_col_dev = xp.asarray(m_col, dtype=x.dtype, device=device)
    h = representable_steps(xp, x, _bound_steps(xp, x, rule, method, m_col_dev, f_max))
    values, status = read_nonzeros(prob, run, method, h, pattern, nz, colour_dev)
    h_nz = xp.take(h, xp.asarray(pattern.cols, device=device), axis=0)
    f_nz = xp.take(f_abs, xp.asarray(pattern.rows, device=device), axis=0)
    error = _bound_error(xp, method, rule, m_safe, f_nz,
                         xp.where(h_nz == 0, xp.ones_like(h_nz), h_nz))
    error = xp.where(status == 0, error, xp.asarray(math.nan, dtype=error.dtype))
    return values, error, h_nz, status


def elementwise_bound(prob: Any, method: AbstractMethod, rule: bound,
                      run: Callable[..., tuple[Any, Any]]
                      ) -> tuple[Any, Any, Any, Any]:
    """Elementwise derivative with the error-bound step: 4-tuple of (n, 1) arrays."""
    from .engine import representable_steps

    _real_problem(prob)
    xp, x = prob.xp, prob.x_flat
    p, q, _, _, high = _bound_constants(method)
    eps = float(xp.finfo(x.dtype).eps)
    big = representable_steps(xp, x, _pow2(xp, eps ** (1.0 / (p + q + 2))
                                           * rule.scale(xp.abs(x), xp=xp)))
    m_vals, _ = run(high, big)
    m_abs = xp.abs(m_vals)
    f_abs = xp.abs(prob.f0)
    h = representable_steps(xp, x, _bound_steps(xp, x, rule, method, m_abs, f_abs))
    values, status = run(method, h)
    m_safe = xp.where(xp.isfinite(m_abs), m_abs, xp.zeros_like(m_abs))
    error = _bound_error(xp, method, rule, m_safe, f_abs, xp.where(h == 0, xp.ones_like(h), h))
    error = xp.where(status == 0, error, xp.asarray(math.nan, dtype=error.dtype))
    return tuple(xp.expand_dims(a, 1) for a in (values, error, h, status))  # type: ignore[return-value]


def is_driven(rule: AbstractStepRule) -> bool:
    """Whether the rule needs f itself (adaptive or bound), not just |x|."""
    return isinstance(rule, (adaptive, bound))


def basis(prob: Any, method: AbstractMethod, rule: AbstractStepRule,
          run: Callable[..., tuple[Any, Any]]) -> tuple[Any, Any, Any, Any]:
    if isinstance(rule, bound):
        return basis_bound(prob, method, rule, run)
    assert isinstance(rule, adaptive)
    return basis_adaptive(prob, method, rule, run)


def elementwise(prob: Any, method: AbstractMethod, rule: AbstractStepRule,
                run: Callable[..., tuple[Any, Any]]
                ) -> tuple[Any, Any, Any, Any]:
    if isinstance(rule, bound):
        return elementwise_bound(prob, method, rule, run)
    assert isinstance(rule, adaptive)
    return elementwise_adaptive(prob, method, rule, run)


def hessian_adaptive(prob: Any, method: AbstractMethod, rule: AbstractStepRule,
                     pairs: np.ndarray, run: Callable[..., tuple[Any, Any]]
                     ) -> tuple[Any, Any, Any, Any]:
    """Adaptive Hessian entries: rows ``[diagonal (n); upper pairs (P)]``, each (n+P, M).

    Diagonal entries use the second-derivative stencil of the method's family, pairs
    the mixed (tensor-product) stencil; both are extrapolated over the same levels.
    """
    from .engine import BasisDirection, representable_steps

    if not isinstance(rule, adaptive):
        raise ValueError("steps.bound() is supported by derivative, jacobian and gradient; "
                         "for hessian use nd.steps.adaptive() or step='auto'.")
    if isinstance(method, ComplexStep) or rule.bounds is not None:
        raise ValueError("an adaptive hessian needs a real stencil and no bounds=; use "
                         "method='central' (or step='auto' with complex_step).")
    _real_problem(prob)
    xp, x = prob.xp, prob.x_flat
    dtype, device = x.dtype, _device(x)
    n, m_out = x.shape[0], prob.f0.shape[0]
    diag_m = method.with_deriv(2)
    h0 = rule.first_step(xp.abs(x), method, xp=xp)
    _, _, h0, floor, level = _setup(prob, rule, method, x, h0)
    n_pairs = pairs.shape[0]
    is_pair = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n_pairs, dtype=np.int64)])
    w = _weights([diag_m, method], is_pair, xp, dtype, device)
    w = xp.where(xp.asarray(is_pair == 1, device=device), w * w, w)  # mixed: sum|w|**2
    roundoff = level * xp.expand_dims(w, 1) * xp.expand_dims(_f_scale(xp, prob.f0), 0)
    first = np.concatenate([np.arange(n), pairs[:, 0]]) if n_pairs else np.arange(n)
    second = np.concatenate([np.arange(n), pairs[:, 1]]) if n_pairs else np.arange(n)
    floor_e = xp.take(floor, xp.asarray(first, device=device), axis=0)

    def level_fn(k: int, rows: np.ndarray) -> Level:
        hk = representable_steps(xp, x, h0 / rule.ratio ** k)
        parts = []
        diag = rows[rows < n]
        if diag.size:
            v, s = run([BasisDirection(diag_m, hk, 0)], diag.reshape(-1, 1))
            parts.append((diag, v, s))
        mixed = rows[rows >= n]
        if mixed.size:
            v, s = run([BasisDirection(method, hk, 0), BasisDirection(method, hk, 1)],
                       pairs[mixed - n])
            parts.append((mixed, v, s))
        vals, stat = _scatter_rows(xp, parts, rows, device)
        hi = xp.take(hk, xp.asarray(first[rows], device=device), axis=0)
        hj = xp.take(hk, xp.asarray(second[rows], device=device), axis=0)
        return Level(vals, stat == int(Status.SUCCESS), xp.sqrt(hi) * xp.sqrt(hj))  # no overflow

    return extrapolate(xp, level_fn, n_entries=n + n_pairs, n_out=m_out, dtype=dtype,
                       device=device, rule=rule,
                       factors=entry_factors([diag_m, method], is_pair, rule, xp, dtype, device),
                       roundoff=roundoff, floor=floor_e, deriv=2)
