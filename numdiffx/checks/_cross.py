"""cross_check: one function implemented in several frameworks, compared pairwise."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from numdiffx._core.api import jacobian
from numdiffx._core.stencils import Stencil, resolve_method
from numdiffx._core.strategies.resolve import resolve_step
from numdiffx.backends import backend_for
from numdiffx.backends.autodiff import reference_for, to_host
from numdiffx.steps import auto, relative

from ._compare import default_tolerances
from ._numerical import finite_difference_error
from ._problem import GradcheckError
from ._trees import cross_points

__all__ = ["CrossCheckReport", "cross_check"]

_KNOWN = ("numpy", "torch", "jax")


@dataclass(frozen=True)
class CrossRow:
    """One compared pair: ``quantity`` is 'value' or 'jacobian d/d inputs[i]'."""

    quantity: str
    first: str
    second: str
    max_abs_diff: float
    where: tuple[int, ...]
    ok: bool


@dataclass(frozen=True)
class CrossCheckReport:
    """Every pairwise comparison made by :func:`cross_check`; ``str()`` is the table."""

    rows: tuple[CrossRow, ...]
    atol: float
    rtol: float

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def disagreeing(self) -> tuple[CrossRow, ...]:
        return tuple(r for r in self.rows if not r.ok)

    def __str__(self) -> str:
        w = max([26, *(len(r.quantity) for r in self.rows)])  # tree paths can be long
        head = f"{'quantity':<{w}} {'first':<18} {'second':<18} {'max |diff|':>11}  where  ok"
        body = [f"{r.quantity:<{w}} {r.first:<18} {r.second:<18} {r.max_abs_diff:>11.3g}  "
                f"{r.where!s:<6} {'yes' if r.ok else 'NO'}" for r in self.rows]
        return "\n".join([head, *body])


def _framework_for(name: str) -> str:
    root = name.split(":", 1)[0].split("_", 1)[0].lower()
    if root not in _KNOWN:
        raise ValueError(f"cross_check key {name!r} must start with one of {_KNOWN} (e.g. "
                         "'torch' or 'torch_port'), naming the framework f uses.")
    return root


@contextlib.contextmanager
def _context(framework: str) -> Iterator[None]:
    if framework == "jax":
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


def _convert(x: np.ndarray, framework: str) -> Any:
    if framework == "torch":
        import torch

        return torch.as_tensor(x, dtype=torch.float64)
    if framework == "jax":
        import jax.numpy as jnp

        return jnp.asarray(x, dtype=jnp.float64)
    return np.array(x, dtype=np.float64)


def _numerical(f: Callable[..., Any], xs: list[Any], method: object, step: object,
               record: dict[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Numerical Jacobians at the step and at half of it, and the FD error estimate."""
    meth = resolve_method(method)
    rule = resolve_step(step) if step is not None else relative(
        auto().scale_for(float(np.finfo(np.float64).eps), meth))
    argnums = tuple(range(len(xs)))
    with backend_for(xs[0]).no_grad():
        full = jacobian(f, *xs, argnums=argnums, method=meth, step=rule, evaluation="loop",
                        full_output=True, **record)
        if not isinstance(rule, relative) or not isinstance(meth, Stencil):
            return [to_host(r.value).astype(np.float64) for r in full], [
                np.zeros(to_host(r.value).shape) for r in full]
        half = jacobian(f, *xs, argnums=argnums, method=meth,
                        step=relative(rule.scale / 2, rule.typical), evaluation="loop",
                        full_output=True, **record)
        value = np.abs(to_host(f(*xs)).astype(np.float64))
    l1 = float(np.sum(np.abs(np.asarray(meth.float_weights, dtype=np.float64))))
    values, errors = [], []
    for r_full, r_half in zip(full, half):
        d_step = to_host(r_full.value).astype(np.float64)
        d_half = to_host(r_half.value).astype(np.float64)
        h_half = to_host(r_half.step).astype(np.float64)
        f_abs = value.reshape(value.shape + (1,) * h_half.ndim)
        values.append(d_half)
        errors.append(finite_difference_error(d_step, d_half, f_abs, h_half,
                                              np.asarray(np.finfo(np.float64).eps), l1))
    return values, errors


def _estimates(name: str, f: Callable[..., Any], xs_np: list[np.ndarray], method: object,
               step: object, autodiff: bool, record: dict[str, Any]
               ) -> tuple[np.ndarray, dict[str, list[np.ndarray]], dict[str, list[np.ndarray]]]:
    """(value, {label: Jacobians}, {label: their error estimates}) of one implementation."""
    framework = _framework_for(name)
    with _context(framework):
        xs = [_convert(x, framework) for x in xs_np]
        with backend_for(xs[0]).no_grad():
            out = f(*xs)
        if isinstance(out, (tuple, list)):
            raise TypeError(f"cross_check compares functions returning one array; "
                            f"{name!r} returned a {type(out).__name__}.")
        value = to_host(out).astype(np.float64)
        numerical, errors = _numerical(f, xs, method, step, record)
        jacs = {f"{name}/numerical": numerical}
        errs = {f"{name}/numerical": errors}
        if autodiff and framework in ("torch", "jax"):
            ref = reference_for(framework)(f, xs, list(range(len(xs))))
            ana = ref.jacobian([0])
            jacs[f"{name}/autodiff"] = [
                np.zeros(value.shape + x.shape) if ana[(0, i)] is None else
                np.asarray(ana[(0, i)]).reshape(value.shape + x.shape)
                for i, x in enumerate(xs_np)]
            errs[f"{name}/autodiff"] = [np.zeros(value.shape + x.shape) for x in xs_np]
    return value, jacs, errs


def cross_check(
    functions: Mapping[str, Callable[..., Any]],
    x: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    method: object = "central",
    step: object = None,
    autodiff: bool = True,
    raise_exception: bool = True,
    names: Mapping[str, Any] | None = None,
    checkpoint: object = None,
    progress: object = None,
) -> CrossCheckReport:
    """Compare the same function implemented in several frameworks (a model being ported).

    ``x`` (numpy arrays or numbers; a tuple for several arguments) is converted to each
    framework in float64 (jax under ``jax.enable_x64``). For every implementation the
    value and numdiffx's numerical Jacobian are computed, plus the autodiff Jacobian
    where the framework has one (torch autograd, ``jax.jacrev``); then every pair of
    values and every pair of Jacobians is compared. The report's table says which pair
    disagrees.

    Parameters
    ----------
    functions : mapping
        ``{"numpy": f_np, "torch": f_t, "jax": f_j}``; keys start with the framework
        name (``"torch_port"`` works too). Each f takes the arguments and returns one
        array.
    x : array, tuple of arrays, or parameter tree
        The point, as numpy data. An argument may be a tree (a dict of named parameters,
        nested dicts/lists/tuples): every float leaf is compared on its own, and the
        table names it (``jacobian d/d inputs[0]['fc.weight']``).
    atol, rtol : float, optional
        ``|a - b| <= (FD error estimates of a and b) + atol + rtol*|b|``: each numerical
        Jacobian is computed at its step and at half of it, and the difference plus a
        round-off term is its error estimate (:func:`finite_difference_error`), so
        implementations that agree are never reported on the numerical side's error.
        Default: the float64 tolerance (9.4e-9) for both.
    method, step : as in :func:`numdiffx.jacobian`
    autodiff : bool
        Include autodiff Jacobians of torch/jax implementations.
    raise_exception : bool
        Raise :class:`GradcheckError` with the table when a pair disagrees.
    names : dict, optional
        For a port whose parameters are named differently: ``{implementation key:
        mapping}``, where the mapping is a dict ``{x's key: its key}`` (a tuple key nests,
        ``("dense1", "kernel")``) or a callable turning x's tree (in that library) into
        the tree the implementation takes (renames, transposes). The Jacobians are
        compared with respect to x's own leaves.
    checkpoint, progress : optional
        As in :func:`numdiffx.jacobian`, for the numerical Jacobians (one file can
        hold every implementation's evaluations: each is kept apart).

    Returns
    -------
    CrossCheckReport

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> alt = lambda x: 1 - 2 / (np.exp(2 * x) + 1)
    >>> report = nd.cross_check({"numpy": np.tanh, "numpy_alt": alt}, np.array([0.1, 0.7]))
    >>> report.passed
    True
    """
    if not isinstance(functions, Mapping) or len(functions) < 2:
        raise TypeError("functions must be a dict of at least two implementations, e.g. "
                        "{'numpy': f_np, 'torch': f_t}.")
    for name, f in functions.items():
        _framework_for(str(name))
        if not callable(f):
            raise TypeError(f"functions[{name!r}] must be callable; got {type(f).__name__}.")
    items = list(x) if isinstance(x, (tuple, list)) and not np.isscalar(x[0]) else [x]
    labels = [f"inputs[{i}]" for i in range(len(items))]
    trees = cross_points(items, dict(functions), names)
    if trees is not None:  # parameter trees: one compared input per float leaf
        items, labels, functions = trees
    xs_np = [np.asarray(to_host(a) if not isinstance(a, (int, float)) else a,
                        dtype=np.float64) for a in items]
    d_atol, d_rtol = default_tolerances("float64")
    atol_ = d_atol if atol is None else float(atol)
    rtol_ = d_rtol if rtol is None else float(rtol)
    values: dict[str, np.ndarray] = {}
    jacs: dict[str, list[np.ndarray]] = {}
    errs: dict[str, list[np.ndarray]] = {}
    for name, f in functions.items():
        values[str(name)], j, e = _estimates(str(name), f, xs_np, method, step, autodiff,
                                             {"checkpoint": checkpoint, "progress": progress})
        jacs.update(j)
        errs.update(e)
    rows: list[CrossRow] = []
    rows += _pairs("value", {k: [v] for k, v in values.items()},
                   {k: [np.zeros_like(v)] for k, v in values.items()}, 0, atol_, rtol_)
    for i in range(len(xs_np)):
        rows += _pairs(f"jacobian d/d {labels[i]}", jacs, errs, i, atol_, rtol_)
    report = CrossCheckReport(tuple(rows), atol_, rtol_)
    if raise_exception and not report.passed:
        bad = ", ".join(f"{r.first} vs {r.second} ({r.quantity})" for r in report.disagreeing)
        hint = ("the implementations compute different VALUES: the ports are not the same "
                "function; fix the forward first."
                if any(r.quantity == "value" for r in report.disagreeing) else
                "the values agree but some Jacobians do not: the estimate that disagrees with "
                "all the others has a wrong derivative (an autodiff rule or the function's "
                "smoothness).")
        raise GradcheckError(f"cross_check failed: {bad}.\n  likely cause: {hint}\n"
                             f"  tolerance |a - b| <= FD error estimates + {atol_:.3g} + "
                             f"{rtol_:.3g}*|b|\n{report}")
    return report


def _pairs(quantity: str, estimates: Mapping[str, list[np.ndarray]],
           errors: Mapping[str, list[np.ndarray]], i: int, atol: float, rtol: float
           ) -> list[CrossRow]:
    """Every pair; a numerical estimate brings its FD error estimate into the tolerance."""
    rows = []
    for (a_name, a), (b_name, b) in itertools.combinations(estimates.items(), 2):
        av, bv = a[i], b[i]
        if av.shape != bv.shape:
            rows.append(CrossRow(quantity, a_name, b_name, float("inf"), (), False))
            continue
        diff = np.abs(av - bv)
        excess = diff - (errors[a_name][i] + errors[b_name][i] + atol + rtol * np.abs(bv))
        excess = np.where(np.isnan(excess), np.inf, excess)
        flat = int(np.argmax(excess)) if excess.size else 0
        where = tuple(int(w) for w in np.unravel_index(flat, av.shape)) if av.size else ()
        worst = float(np.nanmax(diff)) if diff.size else 0.0
        rows.append(CrossRow(quantity, a_name, b_name, worst, where,
                             bool(not excess.size or np.all(excess <= 0))))
    return rows
