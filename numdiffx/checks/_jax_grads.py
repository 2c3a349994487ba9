"""check_grads: a drop-in for ``jax.test_util.check_grads`` with numdiffx's verdicts.

jax's contract, kept: ``args`` may hold jax or numpy arrays, Python or numpy scalars and
pytrees of them; ``order`` and ``modes`` run jax's recursion (``"fwd"`` checks ``jax.jvp``
and then, at order > 1, the jvp itself; ``"rev"`` checks ``jax.vjp`` and then the pullback
applied to the output; ``"lin"`` ``jax.linearize``), each along the same seeded random
direction as jax's and only in the modes asked for; ``atol``/``rtol``/``eps`` are numbers,
0-d arrays or ``{dtype: value}`` dicts (a dtype the dict does not name gets jax's default),
scaled by the size of each compared array as jax does; a failure is an ``AssertionError``.

numdiffx's part, added: the numerical side is jax's own central difference (same points,
same step), so a check jax passes passes here with the same tolerances; where that
comparison fails, two more points give a Richardson value and an estimate of the finite
difference's own error (truncation and round-off), and an element fails only when it is
further from the numerical derivative than the tolerance PLUS that estimate -- a steep
function or a pole does not fail on the numerical side's error. Without ``atol``/``rtol``
the tolerances are numdiffx's own (``default_tolerances``: 9.4e-9 for float64, not jax's
1e-5 times the array size), so a rule that is 1e-6 off is caught. Where both sides are NaN
the element matches (as in jax); an infinite input is perturbed as jax does it (-inf stays
-inf), so a rule that is right there passes. 16-bit arguments are checked at the
tolerances given (or jax's defaults for them). A committed jax array keeps its device or
sharding on every perturbed copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from numdiffx._core.evaluation.progress import progress_iv
from numdiffx._core.validation import checkpoint_iv

from ._compare import default_tolerances
from ._gradcheck import gradcheck
from ._gradgrad import first_backward
from ._jax_record import Evaluations
from ._problem import GradcheckError

__all__ = ["check_grads"]

_MODES = ("fwd", "rev", "lin")
_JAX_EPS = 1e-4  # jax's default step
_LEVELS = 3  # steps tried where jax's comparison fails: eps, eps/16, eps/256
# jax's default_gradient_tolerance by dtype name (float8 variants 1e-1); integers and bools 0
_JAX_TOLERANCE = {"bfloat16": 1e-1, "float16": 1e-2, "float32": 2e-3, "float64": 1e-5,
                  "complex64": 1e-3, "complex128": 1e-5, "float4_e2m1fn": 1.0,
                  "float8_e8m0fnu": 1.0}
_OWN_DEFAULTS = ("float32", "float64", "complex64", "complex128")


def _jax_default(name: str, kind: str) -> float:
    if name in _JAX_TOLERANCE:
        return _JAX_TOLERANCE[name]
    return 1e-1 if kind != "other" else 0.0


def _number(value: object, name: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, a 0-d array or a {{dtype: value}} dict "
                        f"(as jax.test_util.check_grads); got {value!r}.") from None


class _Tolerances:
    """jax's tolerance rules: a number for every dtype, or a dict with jax's defaults for
    the dtypes it does not name; ``None``: numdiffx's defaults (jax's for 16-bit)."""

    def __init__(self, jx: Any, atol: object, rtol: object) -> None:
        self.jx = jx
        self.given = {"atol": self._normal(atol, "atol"), "rtol": self._normal(rtol, "rtol")}

    @staticmethod
    def _normal(value: object, name: str) -> object:
        if value is None:
            return None
        if isinstance(value, Mapping):
            try:
                return {np.dtype(k).name: _number(v, name) for k, v in value.items()}
            except TypeError as exc:
                raise TypeError(f"{name}: the keys of a tolerance dict must be dtypes "
                                f"(np.float32, jnp.bfloat16, 'float64'); {exc}") from None
        return _number(value, name)

    def one(self, which: str, dtype: Any, own: bool) -> tuple[float, bool]:
        """(tolerance, scaled by size) for one dtype; ``own``: numdiffx's default when None."""
        canonical = self.jx.canonical(dtype)
        name, kind = canonical.name, self.jx.kind(canonical)
        value = self.given[which]
        if value is None:
            if own and name in _OWN_DEFAULTS:
                return default_tolerances(name)[0], False
            return _jax_default(name, kind), True
        if isinstance(value, dict):
            return value.get(name, _jax_default(name, kind)), True
        return float(value), True  # type: ignore[arg-type]

    def reference(self, x: Any) -> float:
        """jax's default relative gradient tolerance for x's dtype (not scaled by size)."""
        canonical = self.jx.canonical(self.jx.dtype_of(x))
        return _jax_default(canonical.name, self.jx.kind(canonical))

    def pair(self, dtypes: Sequence[Any], size: int, own: bool = True) -> tuple[float, float]:
        """(atol, rtol) for arrays of these dtypes and ``size`` elements: the loosest of
        the dtypes, times the size where jax scales (its ``atol * a.size``)."""
        out = []
        for which in ("atol", "rtol"):
            tol = 0.0
            for dtype in dtypes:
                value, scaled = self.one(which, dtype, own)
                tol = max(tol, value * size if scaled else value)
            out.append(tol if tol or which == "atol" else 1e-7)  # numpy's rtol when jax's is 0
        return out[0], out[1]


def _close(a: np.ndarray, n: np.ndarray, atol: float, rtol: float, margin: Any = 0.0
           ) -> tuple[np.ndarray, np.ndarray]:
    """(elementwise pass, excess): ``|a - n| <= atol + rtol * |n| + margin``; equal values
    (infinities) and NaN on both sides pass, as in ``np.testing.assert_allclose``."""
    with np.errstate(all="ignore"):
        diff = np.abs(a - n)
        bound = atol + rtol * np.abs(n) + margin
        ok = (diff <= bound) | (a == n) | (np.isnan(a) & np.isnan(n))
        over = np.where(ok, -np.inf, np.where(np.isnan(diff), np.inf, diff - bound))
    return ok, over


def _fmt(v: Any) -> str:
    return f"{complex(v):.6g}" if np.iscomplexobj(v) else f"{float(v):.6g}"


class _Point:
    """One ``(f, args)`` of jax's recursion: its random direction, ``f(args)`` and the
    numerical directional derivative, each computed once and shared by the modes."""

    def __init__(self, jx: Any, f: Callable[..., Any], args: tuple[Any, ...], step: float,
                 seed: int, tol: _Tolerances, evals: Evaluations, label: str) -> None:
        self.jx, self.f, self.args, self.step, self.seed, self.tol = jx, f, args, step, seed, tol
        self.evals, self.label = evals, label
        self._section: Any = None  # the checkpoint record's section, opened when needed
        self.leaves, self.names, self.treedef = jx.flatten(args)
        rng = np.random.RandomState(seed)
        self.tangent = [jx.rand_like(rng, leaf) for leaf in self.leaves]
        self.after_tangent = rng.get_state()  # jax's check_vjp draws its cotangent next
        self._primal: list[Any] | None = None
        self._points: dict[float, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._refined: list[tuple[list[Any], list[Any]]] = []

    # -- f's values ---------------------------------------------------------------------
    def primal(self) -> list[Any]:
        if self._primal is None:
            self._primal, self.out_names, _ = self.jx.flatten(self.f(*self.args))
        return self._primal

    def _values(self, step: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if step not in self._points:
            if self.evals.path is not None and self._section is None:
                self._section = self.evals.section(
                    self.label, [self._wide(p) for p in self.primal()])
            sides = [self.evals.values(self._section, f"{sign:+g}*{step!r}",
                                       len(self.primal()), partial(self._at, sign, step))
                     for sign in (1.0, -1.0)]
            self._points[step] = (sides[0], sides[1])
        return self._points[step]

    def _at(self, sign: float, step: float) -> list[np.ndarray]:
        """f's output leaves at ``args + sign * step * direction`` (wide, on the host)."""
        jx = self.jx
        moved = [jx.shifted(x, t, sign * step) for x, t in zip(self.leaves, self.tangent)]
        outs, _, _ = jx.flatten(self.f(*jx.unflatten(self.treedef, moved)))
        return [self._wide(o) for o in outs]

    def _wide(self, x: Any) -> np.ndarray:
        a = self.jx.host(x)
        k = self.jx.kind(a.dtype)
        return a.astype(np.complex128 if k == "complex" else np.float64) if k != "other" else a

    def inexact(self, k: int) -> bool:
        return self.jx.kind(self.jx.dtype_of(self.primal()[k])) != "other"

    def central(self, step: float | None = None) -> list[np.ndarray]:
        """jax's ``numerical_jvp`` per output leaf (``inf - inf`` counts 0, as jax's)."""
        step = self.step if step is None else step
        plus, minus = self._values(step)
        with np.errstate(all="ignore"):
            return [np.where(p == m, 0.0, p - m) * (0.5 / step) for p, m in zip(plus, minus)]

    def _level(self, h: float) -> tuple[list[Any], list[Any]]:
        """(Richardson value, error estimate) per output leaf from steps h and h/2."""
        d1, d2 = self.central(h), self.central(h / 2)
        plus, minus = self._values(h)
        values, margins = [], []
        with np.errstate(all="ignore"):
            for k, (a, b, p, m) in enumerate(zip(d1, d2, plus, minus)):
                if not self.inexact(k):
                    values.append(a)
                    margins.append(np.zeros(np.shape(a)))
                    continue
                roundoff = self._eps(k) * (np.abs(p) + np.abs(m)) / (2 * h)
                values.append((4 * b - a) / 3)
                margin = 2 * np.abs(a - b) + 3 * roundoff
                margins.append(np.where(np.isnan(margin), np.inf, margin))
        return values, margins

    def refined(self, level: int) -> tuple[list[Any], list[Any]]:
        """Per element, the Richardson value with the smallest error estimate among steps
        eps, eps/16, ... eps/16**level (a point near a pole or a domain edge needs the
        smaller ones), with that estimate."""
        while len(self._refined) <= level:
            values, margins = self._level(self.step / 16 ** len(self._refined))
            if self._refined:
                best_v, best_m = (list(t) for t in self._refined[-1])
                for k, (v, m) in enumerate(zip(values, margins)):
                    better = m < best_m[k]
                    best_v[k] = np.where(better, v, best_v[k])
                    best_m[k] = np.where(better, m, best_m[k])
                values, margins = best_v, best_m
            self._refined.append((values, margins))
        return self._refined[level]

    def settle(self, ok: np.ndarray, compare: Callable[[list[Any], list[Any]], Any]
               ) -> tuple[np.ndarray, Any]:
        """Where jax's comparison failed (``~ok``): compare with the refined values, going
        to smaller steps while an estimate there is larger than the tolerance (or jax's
        default relative tolerance, where that is looser): there the estimate could hide an
        error that jax's own check would catch. ``compare(values, margins)`` -> (pass,
        excess, tolerance without the estimate, estimate, details). Returns (pass, the
        last compare's result)."""
        for level in range(_LEVELS):
            result = compare(*self.refined(level))
            ok2, _, bound, margin, _ = result
            ok2 = ok | ok2
            unsettled = ~(margin <= bound)  # NaN values or a bound: not settled either
            if not (~ok & unsettled).any():
                break  # every estimate used is below its tolerance: smaller steps agree
        return ok2, result

    def _eps(self, k: int) -> float:
        dtype = self.jx.dtype_of(self.primal()[k])
        return float(self.jx.finfo_eps(dtype))

    def where(self) -> str:
        return (f"central difference with eps={self.step:g} along jax's random direction "
                f"(seed {self.seed})")


def _fail(label: str, what: str, a: Any, n: Any, atol: float, rtol: float, margin: float,
          point: _Point, nan_both: int) -> GradcheckError:
    diff = abs(a - n)
    ratio = ""
    if n != 0 and np.isfinite(n) and np.isfinite(a) and a != 0:
        ratio = f"; the analytical value is {_fmt(a / n)} times the true derivative (estimated)"
    elif a == 0 and n != 0:
        ratio = "; the rule returns 0 where f changes"
    nan_note = (f"\n{nan_both} element(s) where both sides are NaN counted as matching, as in "
                "jax's check_grads." if nan_both else "")
    return GradcheckError(
        f"check_grads {label}: {what} differs: analytical {_fmt(a)} vs numerical {_fmt(n)} "
        f"(|difference| {float(diff):.3g} > atol {atol:.3g} + rtol*|numerical| "
        f"{rtol * abs(n):.3g} + FD error estimate {margin:.3g}){ratio}.\n"
        f"Numerical side: {point.where()}; the FD error estimate is counted only where jax's "
        "own comparison fails (Richardson from eps and eps/2, and down to eps/256 where the "
        "estimate exceeds the tolerance)." + nan_note)


def _check_leaves(label: str, point: _Point, analytical: list[Any], what: str) -> None:
    """Compare ``jax.jvp``'s tangent output with the numerical one, leaf by leaf."""
    jx = point.jx
    fast = point.central()
    primal = point.primal()
    for k, (a_leaf, n) in enumerate(zip(analytical, fast)):
        if not point.inexact(k):
            continue
        a = point._wide(a_leaf)
        if a.shape != n.shape:
            raise GradcheckError(f"check_grads {label}: {what} out{point.out_names[k]} has "
                                 f"shape {a.shape}, the primal output {n.shape}.")
        atol, rtol = point.tol.pair([jx.dtype_of(a_leaf), jx.dtype_of(primal[k])], a.size)
        ok, over = _close(a, n, atol, rtol)
        if ok.all():
            continue

        loose = max(rtol, point.tol.reference(primal[k]))

        def compare(values: list[Any], margins: list[Any], k: int = k, a: Any = a,
                    atol: float = atol, rtol: float = rtol, loose: float = loose
                    ) -> tuple[Any, ...]:
            ok2, over2 = _close(a, values[k], atol, rtol, margins[k])
            with np.errstate(all="ignore"):
                bound = atol + loose * np.abs(values[k])
            return ok2, over2, bound, margins[k], (values[k], margins[k])

        passed, (_, over2, _, _, (value, margin)) = point.settle(ok, compare)
        if passed.all():
            continue
        i = np.unravel_index(int(np.argmax(np.where(passed, -np.inf, over2))), a.shape)
        idx = "[" + ", ".join(map(str, i)) + "]" if a.ndim else ""
        nan_both = int(np.sum(np.isnan(a) & np.isnan(n)))
        raise _fail(label, f"{what} out{point.out_names[k]}{idx}", a[i], value[i], atol,
                    rtol, float(np.asarray(margin)[i]), point, nan_both)


def _check_primal(label: str, point: _Point, v_out: Any) -> None:
    """jax's primal comparison: ``f_jvp``'s (or ``f_vjp``'s) primal output vs ``f(args)``."""
    jx = point.jx
    leaves, _, _ = jx.flatten(v_out)
    for k, (got, want) in enumerate(zip(leaves, point.primal())):
        a, b = point._wide(got), point._wide(want)
        atol, rtol = point.tol.pair([jx.dtype_of(got), jx.dtype_of(want)], b.size, own=False)
        if a.shape != b.shape or not _close(a, b, atol, rtol)[0].all():
            raise GradcheckError(f"check_grads {label}: the primal output out"
                                 f"{point.out_names[k]} differs from f(*args) (beyond atol "
                                 f"{atol:.3g}, rtol {rtol:.3g}).")


def _same_dtype(jx: Any, x: Any, y: Any) -> bool:
    dx, dy = jx.dtype_of(x), jx.dtype_of(y)
    return dx == dy if jx.x64() else jx.canonical(dx) == jx.canonical(dy)


def _check_jvp(label: str, point: _Point, lin: bool) -> None:
    jx = point.jx
    tangents = jx.unflatten(point.treedef, point.tangent)
    v_out, t_out = jx.jvp_of(point.f, lin)(point.args, tangents)
    v_leaves, _, _ = jx.flatten(v_out)
    t_leaves, _, _ = jx.flatten(t_out)
    primal = point.primal()
    for k, (v, t, p) in enumerate(zip(v_leaves, t_leaves, primal)):
        if not (_same_dtype(jx, v, t) and _same_dtype(jx, v, p)):
            raise GradcheckError(
                f"check_grads {label}: out{point.out_names[k]}: the primal output's dtype "
                f"{jx.dtype_of(v)}, the tangent's {jx.dtype_of(t)} and f(*args)'s "
                f"{jx.dtype_of(p)} are not all equal (jax's check_grads asserts this).")
    _check_primal(label, point, v_out)
    _check_leaves(label, point, t_leaves, "tangent of")


def _real_dtype(jx: Any, dtypes: Sequence[Any]) -> Any:
    try:
        d = np.result_type(*dtypes)
    except TypeError:
        return np.dtype(np.float64)
    return np.real(np.zeros(0, d)).dtype


def _inner(xs: Sequence[Any], ys: Sequence[Any]) -> Any:
    total: Any = 0.0
    for x, y in zip(xs, ys):
        total = total + np.real(np.dot(np.conj(np.ravel(x)), np.ravel(y)))
    return total


def _check_vjp(label: str, point: _Point) -> None:
    jx = point.jx
    v_out, pullback = jx.vjp_of(point.f)(*point.args)
    _check_primal(label, point, v_out)
    out_leaves, _, out_def = jx.flatten(v_out)
    rng = np.random.RandomState()
    rng.set_state(point.after_tangent)
    cot = [jx.rand_like(rng, leaf) for leaf in out_leaves]
    ct_in = pullback(jx.unflatten(out_def, [jx.conj_like(c) for c in cot]))
    ct_leaves, _, _ = jx.flatten(ct_in)
    ins = [i for i, leaf in enumerate(point.leaves) if jx.kind(jx.dtype_of(leaf)) != "other"]
    outs = [k for k in range(len(out_leaves)) if point.inexact(k)]
    with np.errstate(all="ignore"):
        ip = _inner([point.tangent[i] for i in ins],
                    [np.conj(point._wide(ct_leaves[i])) for i in ins])
        fast = point.central()
        ip_n = _inner([fast[k] for k in outs], [cot[k] for k in outs])
    dtypes = [_real_dtype(jx, [jx.dtype_of(point.leaves[i]) for i in ins]),
              _real_dtype(jx, [jx.dtype_of(out_leaves[k]) for k in outs])]
    atol, rtol = point.tol.pair(dtypes, 1)
    loose = max([rtol] + [point.tol.reference(out_leaves[k]) for k in outs])
    a, n = np.asarray(ip), np.asarray(ip_n)
    if _close(a, n, atol, rtol)[0].all():
        return
    def compare(values: list[Any], margins: list[Any]) -> tuple[Any, ...]:
        with np.errstate(all="ignore"):
            n2 = np.asarray(_inner([values[k] for k in outs], [cot[k] for k in outs]))
            margin = sum(np.sum(np.abs(np.asarray(cot[k])) * margins[k]) for k in outs)
            ok2, over2 = _close(a, n2, atol, rtol, margin)
            return ok2, over2, atol + loose * np.abs(n2), np.asarray(margin), (n2, margin)

    passed, (_, _, _, _, (n2, margin)) = point.settle(np.zeros((), bool), compare)
    if passed.all():
        return
    raise _fail(label, "the cotangent projection <direction, vjp(cotangent)>", a, n2, atol,
                rtol, margin, point, 0)


def _step(eps: object, leaves: Sequence[Any], jx: Any) -> float:
    if isinstance(eps, Mapping):
        named = {np.dtype(k).name: _number(v, "eps") for k, v in eps.items()}
        present = [jx.canonical(jx.dtype_of(x)) for x in leaves
                   if jx.kind(jx.dtype_of(x)) != "other"]
        chosen = [named[d.name] for d in sorted(present, key=lambda d: d.itemsize)
                  if d.name in named]
        return chosen[0] if chosen else _JAX_EPS
    value = _number(eps, "eps") if eps is not None else 0.0
    return value or _JAX_EPS  # jax's ``eps or EPS``


def _is_torch(args: Sequence[Any]) -> bool:
    return any(type(a).__module__.split(".", 1)[0] == "torch" for a in args)


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int,
                modes: Sequence[str] = ("fwd", "rev"), atol: object = None,
                rtol: object = None, eps: object = None, *, seed: int = 0,
                checkpoint: object = None, progress: object = None) -> None:
    """Check derivatives of ``f`` at ``args`` up to ``order``: ``jax.test_util.check_grads``.

    Same signature, arguments and recursion as jax's: ``args`` may hold jax or numpy
    arrays, Python or numpy scalars and pytrees of them (leaves are named by path in
    messages); ``modes`` ``"fwd"`` checks ``jax.jvp`` (and at ``order > 1`` the jvp's own
    derivatives), ``"rev"`` ``jax.vjp`` (then the pullback of the output), ``"lin"``
    ``jax.linearize``; only the modes asked for are built. Each is checked along jax's
    seeded random direction (``seed``, 0 as jax's) against jax's central difference with
    step ``eps`` (default 1e-4). ``atol``/``rtol``/``eps``: numbers, 0-d arrays or
    ``{dtype: value}`` dicts (jax's default for a dtype not named), scaled by the array
    size as jax does. Where jax's comparison would fail, numdiffx evaluates two more points
    and counts the finite difference's own error estimate into the tolerance. Without
    ``atol``/``rtol``: numdiffx's tolerances (9.4e-9 for float64, 6.2e-3 for float32, not
    scaled by size; jax's defaults for 16-bit dtypes), so small rule errors are caught.
    Both sides NaN counts as a match, as in jax. torch tensors are checked through
    :func:`gradcheck` (``fast_mode``), order > 1 on the first backward in reverse mode
    (torch has no forward mode of its backward; gradgradcheck's default).

    ``checkpoint=PATH`` and ``progress=`` are :func:`numdiffx.jacobian`'s: every
    evaluation of f (of its jvp or pullback at order > 1) is kept in the SQLite file, so a
    rerun of the same call after a crash evaluates only what is missing; ``progress=True``
    shows the evaluations made as they complete, a callable gets ``progress(done, total)``;
    by default (None, False) nothing is shown, as jax's check_grads prints nothing (most of
    a long check is jax compiling, not f's evaluations). On torch tensors both go to
    :func:`gradcheck` (its fast mode records the full Jacobians it falls back to).

    Raises
    ------
    GradcheckError
        An ``AssertionError``, as jax's, whose first line names the mode, the output leaf
        and element, both values, the tolerance's terms and the likely cause.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numdiffx as nd
    >>> with jax.enable_x64(True):
    ...     nd.check_grads(jnp.sin, (jnp.array([0.5, 1.0]),), order=2)
    ...     nd.check_grads(lambda p: p["w"] * jnp.tanh(p["b"]),
    ...                    ({"w": 2.0, "b": jnp.ones(3)},), order=1, modes=("rev",))
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an int >= 1; got {order!r}.")
    if isinstance(modes, str) or not modes or any(m not in _MODES for m in modes):
        raise ValueError(f"modes must be a non-empty sequence of {_MODES}; got {modes!r}.")
    args = tuple(args)
    checkpoint, progress = checkpoint_iv(checkpoint), progress_iv(progress) or False
    if _is_torch(args):
        return _check_grads_torch(f, args, order, modes, atol, rtol, eps, seed,
                                  checkpoint, progress)
    from numdiffx.backends import _jax_autodiff as jx

    tol = _Tolerances(jx, atol, rtol)
    leaves, _, treedef = jx.flatten(args)
    step = _step(eps, leaves, jx)
    evals = Evaluations(checkpoint, progress, f, leaves, treedef, step, seed, jx.host)

    def recurse(f: Callable[..., Any], args: tuple[Any, ...], order: int, msg: str) -> None:
        point = _Point(jx, f, args, step, seed, tol, evals, msg)
        if "fwd" in modes:
            fwd_msg = f"JVP of {msg}" if msg else "JVP"
            _check_jvp(fwd_msg, point, lin=False)
            if order > 1:
                recurse(jx.jvp_of(f), (args, args), order - 1, fwd_msg)
        if "rev" in modes:
            rev_msg = f"VJP of {msg}" if msg else "VJP"
            _check_vjp(rev_msg, point)
            if order > 1:
                recurse(jx.pullback_of_output(f), args, order - 1, rev_msg)
        if "lin" in modes:
            lin_msg = f"LIN of {msg}" if msg else "LIN"
            _check_jvp(lin_msg, point, lin=True)
            if order > 1:
                recurse(jx.jvp_of(f, lin=True), (args, args), order - 1, lin_msg)

    try:
        recurse(f, args, order, "")
    finally:
        evals.close()
    return None


def _tolerance(value: object, args: Sequence[Any], name: str) -> float | None:
    """torch path: a number or a {dtype: tolerance} dict; the loosest that applies."""
    if value is None or not isinstance(value, Mapping):
        return value  # type: ignore[return-value]
    present = {np.dtype(str(a.dtype).replace("torch.", "")) for a in args if hasattr(a, "dtype")}
    chosen = [float(v) for k, v in value.items() if np.dtype(k) in present]
    if not chosen:
        raise ValueError(f"{name}={value!r} names none of the argument dtypes "
                         f"{sorted(str(d) for d in present)}.")
    return max(chosen)


def _check_grads_torch(f: Callable[..., Any], args: tuple[Any, ...], order: int,
                       modes: Sequence[str], atol: object, rtol: object, eps: object,
                       seed: int, checkpoint: str | None, progress: object) -> None:
    """torch tensors: gradcheck's fast mode per order, through the first backward."""
    fwd = "fwd" in modes or "lin" in modes
    gradcheck(f, args, eps=None if eps is None else _number(eps, "eps"),
              atol=_tolerance(atol, args, "atol"), rtol=_tolerance(rtol, args, "rtol"),
              fast_mode=True, check_forward_ad=fwd,
              check_backward_ad="rev" in modes, check_undefined_grad=False, seed=seed,
              checkpoint=checkpoint, progress=progress)
    if order > 1:  # the first backward's derivatives: reverse mode (forward mode through
        # torch's backward graph gives zero tangents: a false alarm on any f)
        _, g, g_args, _, _, _ = first_backward(f, args, None, seed)
        _check_grads_torch(g, tuple(g_args), order - 1, ("rev",), atol, rtol, eps, seed,
                           checkpoint, progress)
