"""The numerical side of the checks: finite-difference Jacobians and directional
derivatives, and the error estimate every comparison is measured against.

The Jacobian comes from :func:`numdiffx.jacobian` (one input at a time, its real view,
``evaluation="loop"``). Elements that disagree with the analytical value are refined:
their column is differenced again at half the step, and
:func:`finite_difference_error` turns the two estimates into an error bar. Only
disagreeing elements pay for it, so a passing check costs one Jacobian.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from numdiffx._core.api import jacobian
from numdiffx._core.result import Status
from numdiffx._core.stencils import AbstractMethod, Stencil
from numdiffx._core.strategies.resolve import resolve_step
from numdiffx._core.validation import array_kind
from numdiffx.backends.autodiff import to_host
from numdiffx.steps import AbstractStepRule, adaptive, auto, fixed, relative

from ._columns import lean_columns
from ._problem import OutputsOf, Problem, Slot, real_view

__all__ = ["ROUNDOFF_ULPS", "finite_difference_error", "numerical_jacobian"]

#: Error of one evaluation of f, in units of eps * |f|: a few roundings in f itself.
ROUNDOFF_ULPS = 8.0
#: Most halvings of a step that meets a non-finite value of f (a domain edge).
MAX_HALVINGS = 30


def finite_difference_error(d_step: np.ndarray, d_half: np.ndarray, f_abs: np.ndarray,
                            half_step: np.ndarray | float, eps_out: np.ndarray,
                            weights_l1: float) -> np.ndarray:
    """Error estimate of the difference quotient ``d_half`` taken with step ``h/2``.

    Two terms, both measured, none assumed:

    - truncation: ``|D(h) - D(h/2)|``. For a smooth f and a stencil of order p the error
      of ``D(h/2)`` is ``|D(h) - D(h/2)| / (2**p - 1)`` (Richardson): a third of it for
      central differences, so the full difference is a safe bound. Near poles and in
      steep regions it grows with the curvature; at a kink or jump it is large and the
      comparison cannot fail on the difference alone.
    - round-off: each value of f carries ``~ROUNDOFF_ULPS * eps * |f|``; the quotient
      multiplies that by ``sum|w_k| / (h/2)``.

    All arrays broadcast (rows x columns); ``eps_out`` is the machine epsilon of each
    output row's dtype. The steps are never larger than the step the caller allowed.
    The engine will hand back an honest ``DiffResult.error`` for every step rule; this
    function is the one place to swap for it.
    """
    truncation = np.abs(d_step - d_half)
    roundoff = ROUNDOFF_ULPS * eps_out * f_abs * weights_l1 / np.abs(half_step)
    return np.asarray(truncation + roundoff)


def resolve_rule(p: Problem, eps: float | None, step: object, method: AbstractMethod
                 ) -> AbstractStepRule:
    """The step rule: ``eps`` (torch's keyword) is a fixed step; ``step`` any rule; by
    default the auto step for the least precise checked dtype (inputs and outputs)."""
    if eps is not None:
        return fixed(eps)
    if step is not None:
        return resolve_step(step)
    return relative(auto().scale_for(p.check_eps, method), typical=1.0)


def _eps_rows(outputs: Sequence[Slot]) -> np.ndarray:
    return np.concatenate([np.full(s.size, s.eps) for s in outputs]) if outputs else (
        np.zeros(0))


def _split(outputs: Sequence[Slot], rows: np.ndarray) -> dict[int, np.ndarray]:
    out, start = {}, 0
    for s in outputs:
        out[s.index] = rows[start:start + s.size]
        start += s.size
    return out


@dataclass
class NumericalJacobian:
    """Real-view Jacobian blocks by finite differences, and how they were formed."""

    value: dict[tuple[int, int], np.ndarray]  # (output k, input i) -> (rows_k, n_i)
    error: dict[tuple[int, int], np.ndarray]  # estimated error (0 where not estimated)
    status: dict[tuple[int, int], np.ndarray]
    steps: dict[int, np.ndarray]  # input i -> step per real-view element
    refined: dict[int, set[int]]  # input i -> columns differenced again at h/2
    calls: int = 0
    # elements not compared: an input at +-inf is not moved (x + h == x), so its column
    # is 0 by convention (as jax's check_grads): evidence where f(x) is finite (a rule
    # right there has a zero derivative), none where f(x) is not (inf - inf)
    skip: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


def numerical_jacobian(p: Problem, outputs: Sequence[Slot], method: AbstractMethod,
                       rule: AbstractStepRule, checkpoint: object = None,
                       progress: object = None) -> NumericalJacobian:
    """The finite-difference Jacobian of the checked outputs w.r.t. each checked input."""
    value, error, status, steps = {}, {}, {}, {}
    skip: dict[tuple[int, int], np.ndarray] = {}
    calls = 0
    m_total = sum(s.size for s in outputs)
    for s in p.inputs:
        if s.size == 0 or m_total == 0:
            steps[s.index] = np.zeros(s.size)
            for o in outputs:
                value[(o.index, s.index)] = np.zeros((o.size, s.size))
                error[(o.index, s.index)] = np.zeros((o.size, s.size))
                status[(o.index, s.index)] = np.zeros((o.size, s.size), dtype=np.int8)
            continue
        lean = None if checkpoint is not None or progress not in (None, False) else (
            lean_columns(p, s, outputs, method, rule, progress))
        if lean is not None:  # the engine's values and steps, from the checker's own loop
            v, step = lean
            calls += 2 * s.size
            err, st = np.zeros_like(v), np.zeros(v.shape, dtype=np.int8)
        else:
            v, err, st, step, count = _engine_columns(p, s, outputs, method, rule, checkpoint,
                                                      progress)
            calls += count
        infinite = np.isinf(p.host(s.index))
        unmoved = None
        if infinite.any():  # not perturbed: x + h == x there, so f does not change (as jax)
            v[:, infinite], err[:, infinite] = 0.0, 0.0
            if step.shape == infinite.shape:  # one step per element (an adaptive rule's:
                step[infinite] = 0.0  # one per element and output row)
            st[:, infinite] = int(Status.SUCCESS)
            f0 = np.concatenate([p.f0[o.index] for o in outputs])
            unmoved = infinite[None, :] & ~np.isfinite(f0)[:, None]
        steps[s.index] = step
        for k, rows in _split(outputs, np.arange(m_total)).items():
            value[(k, s.index)], status[(k, s.index)] = v[rows], st[rows]
            error[(k, s.index)] = err[rows]
            if unmoved is not None and unmoved[rows].any():
                skip[(k, s.index)] = unmoved[rows]
    return NumericalJacobian(value, error, status, steps, {s.index: set() for s in p.inputs},
                             calls, skip)



def _engine_columns(p: Problem, s: Slot, outputs: Sequence[Slot], method: AbstractMethod,
                    rule: AbstractStepRule, checkpoint: object, progress: object
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(values, error, status, steps, calls of f) of input ``s``'s block by
    :func:`numdiffx.jacobian` itself (every stencil, rule and backend)."""
    m_total = sum(o.size for o in outputs)
    g = OutputsOf(p, [s.index], outputs)
    x = real_view(p.args[s.index])
    f: Any = g
    infinite = np.isinf(p.host(s.index))
    if infinite.any():  # elements at +-inf stay there (their columns are the caller's)
        xp = array_namespace(x)
        mask = xp.asarray(infinite, device=device_of(x))
        at_x, x = x, xp.where(mask, xp.zeros_like(x), x)

        def f(v: Any) -> Any:
            return g(xp.where(mask, at_x, v))
    res = jacobian(f, x, method=method, step=rule, evaluation="loop", full_output=True,
                   checkpoint=checkpoint, progress=progress)
    v = to_host(res.value).reshape(m_total, s.size).astype(np.float64)
    st = to_host(res.status).reshape(m_total, s.size)
    if isinstance(rule, adaptive):  # a converged tableau's estimate is used as is
        err = to_host(res.error).reshape(m_total, s.size).astype(np.float64)
    else:
        # one-step rules: the checker's own two-step estimate (finite_difference_error)
        # refines the columns that do not pass; their values are valid whatever the
        # one-step estimate's verdict (NONSMOOTH, ROUNDOFF)
        err = np.zeros_like(v)
        st = np.where(np.isin(st, (int(Status.NONSMOOTH), int(Status.ROUNDOFF))),
                      np.int8(Status.SUCCESS), st)
    return v, err, st, to_host(res.step).reshape(-1).astype(np.float64), g.calls


def _device_array(host: np.ndarray, like: Any) -> Any:
    xp, _ = array_kind(like)  # the namespace looked up once per array type
    return xp.asarray(host, dtype=like.dtype, device=device_of(like))


#: float dtypes whose rounding numpy reproduces on the host (a point's realised value)
_HELD = {"float64": np.float64, "float32": np.float32, "torch.float64": np.float64,
         "torch.float32": np.float32}


def _as_held(host: np.ndarray, like: Any) -> np.ndarray | None:
    """``host`` (float64) as an array of ``like``'s dtype holds it, back in float64; None
    where numpy cannot round like that dtype (the device copy is read back instead)."""
    dtype = _HELD.get(str(like.dtype))
    if dtype is None:
        return None
    return host.astype(dtype).astype(np.float64)


def stencil_points(g: OutputsOf, base: Sequence[np.ndarray], delta: Sequence[np.ndarray],
                   method: Stencil, likes: Sequence[Any]) -> tuple[np.ndarray, np.ndarray,
                                                                   list[np.ndarray]]:
    """(D, max|f| at the points, tangent) of the stencil along ``delta`` from ``base``.

    ``base`` and ``delta`` are host real views, one per input of ``g``; each point is
    rounded to its input's dtype and the tangent returned is the one actually realised
    (from the rounded points), so D is J @ tangent to within the stencil's error.
    """
    offsets = [float(o) for o in method.float_offsets]
    weights = [float(w) for w in method.float_weights]
    d = np.zeros(0)
    f_abs = np.zeros(0)
    realised = [np.zeros_like(b) for b in base]
    for o, w in zip(offsets, weights):
        hosts = [b + o * dl for b, dl in zip(base, delta)]
        pts = [_device_array(h, like) for h, like in zip(hosts, likes)]
        out = to_host(g(*pts)).astype(np.float64)
        d = w * out if d.size == 0 else d + w * out
        f_abs = np.abs(out) if f_abs.size == 0 else np.maximum(f_abs, np.abs(out))
        if o != 0:
            for pos, pt in enumerate(pts):
                moved = _as_held(hosts[pos], likes[pos])
                if moved is None:
                    moved = to_host(pt).astype(np.float64)
                with np.errstate(invalid="ignore"):  # an element at +-inf does not move
                    taken = np.where(moved == base[pos], 0.0, moved - base[pos])
                realised[pos] = realised[pos] + w * taken
    return d, f_abs, realised


def refine_columns(p: Problem, outputs: Sequence[Slot], slot: Slot, columns: Sequence[int],
                   num: NumericalJacobian, method: AbstractMethod) -> None:
    """Difference ``columns`` of input ``slot`` again at half the step (and smaller);
    store the value and its :func:`finite_difference_error` in ``num``.

    The step halves while the error estimate keeps improving (at least twofold): for a
    smooth f at a good step that is one extra level; near a pole or a domain edge, where
    the first step was too large, the halving goes on until the estimate is as small as
    it gets, so a mismatch there is judged at the best accuracy f allows -- no false
    alarm from a too-large step, no bug hidden behind one. Where f is not finite at a
    stencil point while f(x) is (a domain edge within the step: sqrt or ndtri near 0)
    the step halves until two successive steps give finite values. A smaller step is
    never larger than the caller allowed.
    """
    if not isinstance(method, Stencil):
        return
    g = OutputsOf(p, [slot.index], outputs)
    base = p.host(slot.index)
    like = real_view(p.args[slot.index])
    eps_rows = _eps_rows(outputs)
    l1 = float(np.sum(np.abs(np.asarray(method.float_weights, dtype=np.float64))))
    defined = np.isfinite(np.concatenate([p.f0[o.index] for o in outputs]))
    for j in columns:
        d_prev = np.concatenate([num.value[(o.index, slot.index)][:, j] for o in outputs])
        h = float(num.steps[slot.index][j])
        best: tuple[np.ndarray, np.ndarray] | None = None
        for _ in range(MAX_HALVINGS):
            delta = np.zeros_like(base)
            delta[j] = h / 2
            d_half, f_abs, realised = stencil_points(g, [base], [delta], method, [like])
            h_half = float(realised[0][j])
            if h_half == 0:
                break
            d_half = d_half / h_half
            if np.all(np.isfinite(d_half[defined])) and np.all(np.isfinite(d_prev[defined])):
                err = finite_difference_error(d_prev, d_half, f_abs, h_half, eps_rows, l1)
                if best is not None and not np.sum(err[defined]) < 0.5 * np.sum(
                        best[1][defined]):
                    break  # no longer improving: the previous level stands
                best = (d_half, err)
            d_prev, h = d_half, h_half
        if best is None:
            continue
        for k, rows in _split(outputs, np.arange(best[0].size)).items():
            num.value[(k, slot.index)][:, j] = best[0][rows]
            num.error[(k, slot.index)][:, j] = best[1][rows]
        num.refined[slot.index].add(j)
    num.calls += g.calls


@dataclass
class Directional:
    """A finite-difference J @ w along one joint direction over all checked inputs."""

    value: np.ndarray  # real view of J w, all checked outputs
    error: np.ndarray | None  # estimate, or None before refinement
    tangent: dict[int, np.ndarray]  # input -> the tangent actually realised (real view)
    f_abs: np.ndarray


def directional(p: Problem, outputs: Sequence[Slot], delta: dict[int, np.ndarray],
                method: AbstractMethod, previous: Directional | None = None) -> Directional:
    """J @ delta by the stencil along ``delta`` (host real views per input); with
    ``previous`` (the same direction at twice the step) also its error estimate."""
    if not isinstance(method, Stencil):
        raise ValueError("fast_mode needs a finite-difference stencil; got method "
                         f"{method!r}. Use method='central'.")
    slots = list(p.inputs)
    g = OutputsOf(p, [s.index for s in slots], outputs)
    base = [p.host(s.index) for s in slots]
    likes = [real_view(p.args[s.index]) for s in slots]
    d, f_abs, realised = stencil_points(g, base, [delta[s.index] for s in slots], method, likes)
    tangent = {s.index: r for s, r in zip(slots, realised)}
    error = None
    if previous is not None:
        l1 = float(np.sum(np.abs(np.asarray(method.float_weights, dtype=np.float64))))
        # previous is along twice this tangent: halve it to compare like with like
        error = finite_difference_error(previous.value / 2, d, f_abs, 1.0, _eps_rows(outputs),
                                        l1)
    return Directional(d, error, tangent, f_abs)


def split_rows(outputs: Sequence[Slot], rows: np.ndarray) -> dict[int, np.ndarray]:
    """Rows of the concatenated real view of ``outputs`` -> {output index: rows}."""
    return _split(outputs, rows)


def refine_direction(p: Problem, outputs: Sequence[Slot], deltas: dict[int, np.ndarray],
                     method: AbstractMethod, first: Directional) -> Directional | None:
    """The directional difference at half the step, and smaller while its error estimate
    keeps improving (as :func:`refine_columns`); None if f is never finite along it.
    The result is along its own realised tangent, ``2**-k`` times the first one."""
    prev, best, best_norm = first, None, np.inf
    defined = np.isfinite(np.concatenate([p.f0[o.index] for o in outputs]))
    for k in range(1, MAX_HALVINGS + 1):
        half = {i: x / 2**k for i, x in deltas.items()}
        if np.all(np.isfinite(prev.value[defined])):
            d = directional(p, outputs, half, method, previous=prev)
        else:
            d = directional(p, outputs, half, method)
        if d.error is not None and np.all(np.isfinite(d.value[defined])):
            norm = float(np.sum(d.error[defined])) * 2**k
            if best is not None and not norm < 0.5 * best_norm:
                break
            best, best_norm = d, norm
        prev = d
    return best


def unmoved_projection(p: Problem, vj: dict[int, np.ndarray | None], v: dict[int, np.ndarray],
                       atol: float, seed: int) -> str | None:
    """The direction does not move an input element at +-inf (u = 0 there), so (v^T J)_j
    is compared alone: 0 by convention where f(x) is finite (see NumericalJacobian.skip);
    a line if it is not, None otherwise (or where f(x) is not finite: no evidence)."""
    infinite = {s.index: np.isinf(p.host(s.index)) for s in p.inputs}
    if not any(m.any() for m in infinite.values()) or not all(
            np.all(np.isfinite(p.f0[o.index])) for o in p.outputs):
        return None
    tol = atol * float(sum(np.abs(c).sum() for c in v.values()))
    for s in p.inputs:
        g, at = vj.get(s.index), infinite[s.index]
        if g is not None and at.any() and not np.all(np.abs(g[at]) <= tol):
            return (f"fast mode (seed={seed}): (v^T J) at the elements of {s.name} at "
                    f"+-inf is not 0 (> {tol:.2g}); every element recomputed below. ")
    return None
