"""Public operations: derivative, jacobian, gradient, hessian, jvp, hvp.

Each validates its arguments once at the boundary (``_prepare``), then hands trusted,
normalised values to the engine. Results are arrays of the input's namespace, dtype
and device; ``full_output=True`` returns a :class:`DiffResult`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from numdiffx.backends import backend_for

from . import adaptive, reliability
from .distributed import check_executor
from .engine import (
    DEFAULT_MEMORY_BUDGET,
    EVALUATION_MODES,
    BasisDirection,
    Evaluator,
    GroupDirection,
    VectorDirection,
    differences,
    representable_steps,
)
from .result import DiffResult
from .stencils import AbstractMethod, ComplexStep, resolve_method
from .steps import AbstractStepRule, resolve_step

__all__ = ["derivative", "gradient", "hessian", "hvp", "jacobian", "jvp"]


# ---------------------------------------------------------------------------------------
# validation and normalisation
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Options:
    method: AbstractMethod
    rule: AbstractStepRule
    evaluation: str
    chunk_size: int | None
    memory_budget: int
    batch_axis: int = 0
    executor: Any = None  # with an executor, chunk_size is the points per task
    task_size: int | None = None
    retries: int = 0


def _options(method: object, step: object, evaluation: object, chunk_size: object,
             memory_budget: object, batch_axis: object = 0, executor: object = None,
             retries: object = 0) -> _Options:
    m = resolve_method(method)
    rule = resolve_step(step)
    if not isinstance(evaluation, str) or evaluation not in EVALUATION_MODES:
        raise ValueError(f"evaluation={evaluation!r} is not known; use one of {EVALUATION_MODES} "
                         "('batched' if f accepts a leading batch axis).")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or a positive int (points per call of f); "
                         f"got {chunk_size!r}.")
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise ValueError(f"memory_budget must be a positive int number of bytes; got "
                         f"{memory_budget!r}. Example: memory_budget=2**28.")
    if isinstance(batch_axis, bool) or not isinstance(batch_axis, int) or batch_axis < 0:
        raise ValueError(f"batch_axis must be a non-negative int (the axis of f's arguments "
                         f"holding the perturbed copies); got {batch_axis!r}.")
    if batch_axis != 0 and evaluation != "batched":
        raise ValueError(f"batch_axis={batch_axis} only applies to evaluation='batched'; got "
                         f"evaluation={evaluation!r}. Pass evaluation='batched'.")
    check_executor(executor, retries)
    if executor is not None:  # chunk_size sizes the tasks; the chunks follow memory_budget
        return _Options(m, rule, evaluation, None, memory_budget, batch_axis, executor,
                        chunk_size, retries)  # type: ignore[arg-type]
    return _Options(m, rule, evaluation, chunk_size, memory_budget, batch_axis)


def _check_callable(f: object) -> None:
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}. Pass the function "
                        "itself, e.g. nd.jacobian(f, x), not f(x).")


def _normalise_argnums(argnums: object, nargs: int) -> tuple[tuple[int, ...], bool]:
    """(argnums tuple, whether a tuple was given)."""
    if nargs == 0:
        raise TypeError("at least one positional argument to differentiate is required, e.g. "
                        "nd.jacobian(f, x).")
    given_tuple = isinstance(argnums, (tuple, list))
    nums = tuple(argnums) if given_tuple else (argnums,)  # type: ignore[arg-type]
    if not nums:
        raise ValueError("argnums must not be empty; use argnums=0 or argnums=(0, 1).")
    out = []
    for a in nums:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"argnums must be an int or a tuple of ints; got {argnums!r}.")
        if not -nargs <= a < nargs:
            raise ValueError(f"argnums={argnums!r} is out of range for {nargs} positional "
                             f"argument(s); use values in 0..{nargs - 1}.")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"argnums must not repeat an argument; got {argnums!r}.")
    return tuple(out), given_tuple


def _as_input(x: Any, name: str, method: AbstractMethod) -> tuple[Any, Any]:
    """(xp, floating array) for one differentiated argument; refuses what cannot work."""
    if isinstance(x, (bool, int, float, complex, list, tuple)) or isinstance(x, np.generic):
        try:
            x = np.asarray(x)
        except ValueError as exc:
            raise ValueError(f"{name} must be a rectangular list of numbers; numpy could not "
                             f"convert it ({exc}).") from None
        if x.dtype == object:
            raise TypeError(f"{name} must hold numbers; a list of {type(x.flat[0]).__name__} "
                            "is not an array. Pass a numeric array.")
    try:
        xp = array_namespace(x)
    except TypeError:
        raise TypeError(f"{name} must be an array (numpy, torch, jax, cupy, ...), a Python number "
                        f"or a list of numbers; got {type(x).__name__}.") from None
    if str(_device(x)) == "meta":
        raise ValueError(f"{name} is on the 'meta' device, which holds no values to "
                         "difference; move it to a real device first (x.to('cpu')).")
    dtype = x.dtype
    if xp.isdtype(dtype, "bool") or xp.isdtype(dtype, "integral"):
        default = xp.__array_namespace_info__().default_dtypes(device=_device(x))["real floating"]
        x = xp.astype(x, default)
    elif xp.isdtype(dtype, "real floating"):
        if xp.finfo(dtype).bits < 32:
            raise TypeError(
                f"{name} has dtype {dtype}: finite differences in a 16-bit float have at most 3 "
                "correct digits and often give silent zeros. Cast to float32 (x.float() / "
                "x.astype(float32)) and cast the result back if needed."
            )
    elif xp.isdtype(dtype, "complex floating"):
        if isinstance(method, ComplexStep):
            raise TypeError(f"{name} is complex: the complex-step method needs real inputs. Use "
                            "method='central' (it differentiates along the real axis).")
    else:  # pragma: no cover - unknown dtype kinds
        raise TypeError(f"{name} has unsupported dtype {dtype}; use a float32/float64 array.")
    return xp, x


def _device(x: Any) -> Any:
    from array_api_compat import device

    return device(x)


@dataclass
class _Problem:
    """The differentiated variables of one call, flattened into one vector."""

    xp: Any
    x_flat: Any
    shapes: tuple[tuple[int, ...], ...]
    evaluator: Evaluator
    f0: Any


def _problem(f: Callable[..., Any], args: Sequence[Any], variables: Sequence[int],
             opts: _Options, names: Sequence[str], known: _Problem | None = None) -> _Problem:
    """Validate and flatten the variables; evaluate f(x) unless ``known`` already did."""
    args = list(args)
    xp = None
    flats, shapes, dtypes = [], [], []
    backend: Any = None
    for i, name in zip(variables, names):
        xpi, xi = _as_input(args[i], name, opts.method)
        if xp is None:
            xp, backend = xpi, backend_for(xi)
        elif xpi is not xp or backend is None:
            raise TypeError(f"all differentiated arguments must come from one array library; "
                            f"{name} is a {type(xi).__name__}. Convert it first.")
        xi = backend.prepare(xi, xp)
        args[i] = xi
        flats.append(xp.reshape(xi, (-1,)))
        shapes.append(tuple(xi.shape))
        dtypes.append(xi.dtype)
    if len(set(dtypes)) > 1:
        raise TypeError(f"the arguments in argnums have different dtypes {dtypes}; cast them to a "
                        "common dtype first.")
    assert xp is not None
    x_flat = flats[0] if len(flats) == 1 else xp.concat(flats, axis=0)
    for shape, name in zip(shapes, names):
        if opts.batch_axis > len(shape):
            raise ValueError(f"batch_axis={opts.batch_axis} is out of range for {name} of shape "
                             f"{shape}; use 0..{len(shape)}.")
    evaluator = Evaluator(f, args, variables, shapes, opts.evaluation, backend, xp,
                          opts.batch_axis, executor=opts.executor, task_size=opts.task_size,
                          retries=opts.retries)
    if known is None:
        f0 = evaluator.first(x_flat)
    else:  # f(x) does not depend on which argument is perturbed: reuse it
        f0 = known.f0
        evaluator.out_shape, evaluator.out_dtype = known.evaluator.out_shape, f0.dtype
    if isinstance(opts.method, ComplexStep) and xp.isdtype(f0.dtype, "complex floating"):
        raise TypeError("method='complex_step' needs a real-valued f; f returned complex values "
                        "at real x. Use method='central'.")
    if isinstance(opts.method, ComplexStep) and known is None:
        reliability.check_holomorphic(xp, evaluator, x_flat, f0)
    return _Problem(xp, x_flat, tuple(shapes), evaluator, f0)


def _steps(prob: _Problem, opts: _Options, method: AbstractMethod, deriv_for_rule: int) -> Any:
    """Per-element steps actually used, for a basis direction."""
    xp = prob.xp
    real = xp.real(prob.x_flat) if xp.isdtype(prob.x_flat.dtype, "complex floating") else (
        prob.x_flat)
    complex_step = isinstance(method, ComplexStep)
    h = opts.rule.nominal(xp.abs(real), xp=xp, dtype=real.dtype,
                          method=method.with_deriv(deriv_for_rule))
    if complex_step:
        return h  # an imaginary step is never lost to rounding of the real part
    return representable_steps(xp, real, h)


def _vector_step(prob: _Problem, opts: _Options, method: AbstractMethod, v: Any,
                 deriv_for_rule: int) -> Any:
    """Scalar step t for a direction v: the element-scale step divided by max |v|."""
    xp = prob.xp
    real = xp.real(prob.x_flat) if xp.isdtype(prob.x_flat.dtype, "complex floating") else (
        prob.x_flat)
    scale = xp.max(xp.abs(real)) if real.shape[0] else xp.asarray(0.0, dtype=real.dtype)
    h = opts.rule.nominal(xp.reshape(scale, (1,)), xp=xp, dtype=real.dtype,
                          method=method.with_deriv(deriv_for_rule))
    vmax = xp.max(xp.abs(v)) if v.shape[0] else xp.asarray(1.0, dtype=real.dtype)
    vmax = xp.where(vmax == 0, xp.asarray(1.0, dtype=vmax.dtype), vmax)
    return xp.reshape(h, ()) / xp.astype(vmax, h.dtype)


def _result(value: Any, status: Any, step: Any, nfev: int, full_output: bool) -> Any:
    if full_output:
        return DiffResult(value=value, error=None, step=step, nfev=nfev, status=status)
    return value


def _adaptive_result(xp: Any, parts: tuple[Any, Any, Any, Any], nfev: int,
                     shape: tuple[int, ...], full_output: bool, columns: bool) -> Any:
    """(E, M) value/error/step/status of the adaptive driver -> the operation's layout."""
    def lay(a: Any) -> Any:
        return xp.reshape(xp.permute_dims(a, (1, 0)) if columns else a, shape)

    value, error, step, status = (lay(a) for a in parts)
    if full_output:
        return DiffResult(value=value, error=error, step=step, nfev=nfev, status=status)
    return value


def _run(prob: _Problem, opts: _Options,
         directions: Sequence[BasisDirection | VectorDirection | GroupDirection],
         entries: np.ndarray, offsets: Sequence[float] | None = None) -> tuple[Any, Any]:
    return differences(prob.xp, prob.evaluator, prob.x_flat, prob.f0, directions, entries,
                       chunk_points=opts.chunk_size, memory_budget=opts.memory_budget,
                       offsets=offsets)


def _first_derivative_method(opts: _Options, op: str) -> AbstractMethod:
    if opts.method.deriv != 1:
        raise ValueError(f"{op} needs a first-derivative method; got deriv={opts.method.deriv}. "
                         "Use nd.derivative for higher derivatives of elementwise functions, or "
                         "nd.hessian for second derivatives.")
    return opts.method


def _columns_to_layout(xp: Any, values: Any, out_shape: tuple[int, ...],
                       in_shapes: Sequence[tuple[int, ...]]) -> Any:
    """(n, M) entries -> out_shape + in_shape (one variable)."""
    return xp.reshape(xp.permute_dims(values, (1, 0)), (*out_shape, *in_shapes[0]))


# ---------------------------------------------------------------------------------------
# public operations
# ---------------------------------------------------------------------------------------
def jacobian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    method: object = "central",
    step: object = None,
    evaluation: str = "auto",
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    full_output: bool = False,
    sparsity: object = None,
    sparse_output: bool = True,
    batch_axis: int = 0,
    executor: object = None,
    retries: int = 0,
) -> Any:
    """Jacobian of ``f`` by finite differences, in the ``torch.func.jacrev`` layout.

    Parameters
    ----------
    f : callable
        ``f(*args)`` returns one array (any shape, or a scalar). With
        ``evaluation="batched"`` f receives every array argument with an extra leading
        batch axis of size m (all perturbed copies at once) and must return shape
        ``(m, *out_shape)``; with ``"loop"`` it receives unbatched arguments, one
        perturbed point per call; with ``"vmap"`` the backend's vmap maps it.
    *args : arrays
        Positional arguments of ``f``. Those selected by ``argnums`` are differentiated.
    argnums : int or tuple of int
        Which arguments to differentiate. A tuple returns a tuple of Jacobians.
    method : str or method object
        ``"central"`` (default, order 2), ``"forward"``, ``"backward"`` (alias
        ``"minus"``), ``"complex_step"``, or ``nd.central(order=4)``, ``nd.Stencil(...)``.
    step : None, "auto", float or step rule
        ``None``/``"auto"``: ``nd.steps.auto()``, per element
        ``h_i = c * eps(dtype)**(1/(p+q)) * max(|x_i|, 1)`` (``p`` the stencil's order,
        ``q = 1``, ``c`` its ``step_constant``); a number is a fixed absolute step; or
        any rule from ``nd.steps`` (``adaptive()`` and ``bound()`` add an error
        estimate). The step actually used is ``(x + h) - x``; where it vanishes the
        element is NaN with status STEP_TOO_SMALL.
    evaluation : {"auto", "batched", "vmap", "loop"}
        How f is called. ``"auto"`` is the backend's default (``"vmap"`` on torch and
        jax, ``"loop"`` on numpy); f(x) is evaluated once and reused.
    chunk_size : int, optional
        Most perturbed points per call of f. Default: as many as fit ``memory_budget``.
    memory_budget : int
        Bytes of perturbed inputs plus outputs held at once (default 256 MiB).
    full_output : bool
        Return a :class:`DiffResult` (value, error, step, nfev, status).
    sparsity : None, "detect", bool array, scipy.sparse matrix, (rows, cols) or SparsityPattern
        The structurally nonzero entries of the Jacobian as an ``(out.size, in.size)``
        matrix. Columns are coloured (greedy largest-first, Curtis-Powell-Reid) and all
        columns of a colour are perturbed together: the cost is the number of colours,
        not ``in.size``. ``"detect"`` probes f first (see ``nd.detect_sparsity``; detect
        once and pass the returned pattern to later calls). One argnums int only.
    sparse_output : bool
        With ``sparsity``: return a sparse ``(out.size, in.size)`` matrix --
        ``scipy.sparse.csr_array`` for numpy, a sparse COO tensor for torch, ``BCOO``
        for jax, else ``nd.SparseJacobian`` -- or, if False, the dense jacrev layout.
        With ``full_output`` the status is per stored nonzero, in row-major order.
    batch_axis : int
        With ``evaluation="batched"``, the axis of f's array arguments (and of its
        output) that holds the perturbed copies (default 0: a new leading axis). If every
        differentiated argument has size 1 on that axis, the copies are concatenated
        along it (x of shape (64, 1, 64) with batch_axis=1 reaches f as (64, m, 64));
        otherwise a new axis is inserted there ((20, 5) reaches f as (20, m, 5)). f's
        output carries the batch on the same axis by the same rule. To turn the batched
        arguments into a network's inputs, compose: ``f = lambda *a: net(wrapper(*a))``.
    executor : concurrent.futures.Executor-like, optional
        Anything with ``submit(fn, *args)`` returning futures -- a thread or process
        pool, or a ``dask.distributed.Client``. The perturbed points are split into
        tasks of ``chunk_size`` points (default: about 4 tasks per worker), evaluated
        there and gathered in order; the result is identical to local evaluation. f
        must be picklable for process-based executors (dask's cloudpickle accepts
        lambdas; ``ProcessPoolExecutor`` needs a module-level function). A failing task
        raises ``nd.EvaluationError`` naming its points (the cause chained).
    retries : int
        With ``executor``, resubmit a failed task up to this many times (default 0).

    Returns
    -------
    array or tuple of arrays or DiffResult
        Shape ``f(x).shape + x.shape``, in the input's namespace, dtype and device.
        A dense result that would need more than half the machine's memory is refused
        with a ValueError stating its size (pass ``sparsity=``).
        Elements whose stencil met NaN/inf, or whose step vanished in ``x + h``, are NaN
        with a status code; nothing raises for one bad element.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 1.0, 2.0])
    >>> J = nd.jacobian(np.sin, x)
    >>> float(np.max(np.abs(J - np.diag(np.cos(x))))) < 1e-10
    True
    """
    return _jacobian(f, args, argnums, method, step, evaluation, chunk_size, memory_budget,
                     full_output, op="jacobian", batch_axis=batch_axis, sparsity=sparsity,
                     sparse_output=sparse_output, executor=executor, retries=retries)


def _jacobian(f: Callable[..., Any], args: Sequence[Any], argnums: object, method: object,
              step: object, evaluation: object, chunk_size: object, memory_budget: object,
              full_output: bool, op: str, batch_axis: object = 0, sparsity: object = None,
              sparse_output: bool = True, executor: object = None, retries: object = 0) -> Any:
    _check_callable(f)
    opts = _options(method, step, evaluation, chunk_size, memory_budget, batch_axis, executor,
                    retries)
    meth = _first_derivative_method(opts, op)
    nums, as_tuple = _normalise_argnums(argnums, len(args))
    if sparsity is not None and as_tuple:
        raise TypeError("sparsity= works with one argnums int; compute each argument's "
                        "sparse Jacobian in its own call.")
    if as_tuple:  # each argument is prepared on its own below: compare libraries first
        kinds = {a: array_namespace(_as_input(args[a], f"args[{a}]", meth)[1]) for a in nums}
        if len(set(map(id, kinds.values()))) > 1:
            raise TypeError("all differentiated arguments must come from one array library; "
                            f"got {[type(args[a]).__name__ for a in nums]}. Convert them first.")
    results = []
    first: _Problem | None = None
    nfev = 0
    for a in nums:
        prob = _problem(f, args, (a,), opts, (f"args[{a}]",), known=first)
        if first is None:
            first = prob
            if op == "gradient" and prob.evaluator.out_shape != ():
                raise ValueError(f"gradient needs a scalar-valued f; f returned shape "
                                 f"{prob.evaluator.out_shape}. Use nd.jacobian instead.")
        xp, out_shape = prob.xp, prob.evaluator.out_shape
        if adaptive.is_driven(opts.rule):  # steps.adaptive / steps.bound: f picks the step
            def run(d: list[Any], e: np.ndarray, offsets: Sequence[float] | None = None,
                    p: _Problem = prob) -> tuple[Any, Any]:
                return _run(p, opts, d, e, offsets)

            if sparsity is not None:
                pattern = _pattern(prob, opts, sparsity)
                if isinstance(opts.rule, adaptive.adaptive):  # tableau over the nonzeros
                    parts = adaptive.sparse_adaptive(prob, meth, opts.rule, pattern, run)
                    parts = tuple(xp.reshape(a, (-1,)) for a in parts)
                else:
                    assert isinstance(opts.rule, adaptive.bound)
                    parts = adaptive.sparse_bound(prob, meth, opts.rule, pattern, run)
                return _sparse_adaptive_result(prob, pattern, parts, sparse_output, full_output)
            parts = adaptive.basis(prob, meth, opts.rule, run)
            nfev += prob.evaluator.nfev
            results.append(_adaptive_result(xp, parts, nfev, (*out_shape, *prob.shapes[0]),
                                            full_output, columns=True))
            continue
        h = _steps(prob, opts, meth, 1)
        n = prob.x_flat.shape[0]
        if sparsity is not None:
            return _sparse_jacobian(prob, opts, meth, h, sparsity, sparse_output, full_output)
        _check_dense_fits(prob.f0.shape[0], n, prob.x_flat.dtype)
        values, status = _run(prob, opts, [BasisDirection(meth, h, 0)],
                              np.arange(n).reshape(n, 1))
        def retry(m: AbstractMethod, rows: np.ndarray, factor: float, p: _Problem = prob,
                  h: Any = h) -> tuple[Any, Any]:
            return _run(p, opts, [BasisDirection(m, h * factor, 0)], rows.reshape(-1, 1))

        # a domain edge between x - h and x + h: the one-sided stencil on the finite side
        values, status = reliability.one_sided_retry(xp, meth, prob.f0, values, status, retry)
        nfev += prob.evaluator.nfev
        value = _columns_to_layout(xp, values, out_shape, prob.shapes)
        status = _columns_to_layout(xp, status, out_shape, prob.shapes)
        results.append(_result(value, status, xp.reshape(h, prob.shapes[0]), nfev, full_output))
    return tuple(results) if as_tuple else results[0]


def _check_dense_fits(m_out: int, n: int, dtype: Any) -> None:
    """Refuse, with the size, a dense result that cannot fit in memory."""
    from .sparse import dense_bytes_limit

    limit = dense_bytes_limit()
    needed = m_out * n * 8 * (2 if "complex" in str(dtype) else 1)
    if limit is not None and needed > limit:
        raise ValueError(
            f"the dense Jacobian would be {m_out} x {n} = {m_out * n:.3g} entries "
            f"({needed / 2**30:.1f} GiB), more than half of this machine's memory; pass "
            "sparsity= (a pattern, or 'detect') for a sparse result, or use nd.jvp for "
            "directional derivatives."
        )


def _check_sparse_output(sparse_output: object) -> None:
    if not isinstance(sparse_output, bool):
        raise TypeError(f"sparse_output must be True or False; got {sparse_output!r}.")


def _pattern(prob: _Problem, opts: _Options, sparsity: object) -> Any:
    """The SparsityPattern of this call: detected, or normalised from the user's."""
    from .sparse import SparsityPattern, _detect

    if isinstance(sparsity, str):
        if sparsity != "detect":
            raise ValueError(f"sparsity={sparsity!r} is not known; use 'detect', a boolean "
                             "mask, a scipy.sparse matrix, a (rows, cols) pair or a pattern.")
        return _detect(prob, opts, nan_probe=True, seed=0)
    return SparsityPattern.from_any(sparsity, (prob.f0.shape[0], prob.x_flat.shape[0]))


def _sparse_value(prob: _Problem, rows: Any, cols: Any, data: Any, sparse_output: object) -> Any:
    """The backend's sparse (out.size, in.size) matrix, or the dense jacrev layout."""
    from .sparse import scatter_dense

    xp = prob.xp
    shape = (prob.f0.shape[0], prob.x_flat.shape[0])
    if sparse_output:
        return prob.evaluator.backend.to_sparse(rows, cols, data, shape, xp)
    _check_dense_fits(*shape, data.dtype)
    dense = scatter_dense(xp, rows, cols, data, shape, _device(prob.x_flat))
    return xp.reshape(dense, (*prob.evaluator.out_shape, *prob.shapes[0]))


def _sparse_adaptive_result(prob: _Problem, pattern: Any, parts: tuple[Any, ...],
                            sparse_output: object, full_output: bool) -> Any:
    """Per-nonzero value/error/step/status of a driver -> the sparse (or dense) result."""
    _check_sparse_output(sparse_output)
    xp, dev = prob.xp, _device(prob.x_flat)
    data, err, step, st = parts
    rows = xp.asarray(pattern.rows, device=dev)
    cols = xp.asarray(pattern.cols, device=dev)
    value = _sparse_value(prob, rows, cols, data, sparse_output)
    if not full_output:
        return value
    # the adaptive step is chosen per entry: report it per stored nonzero, like the error
    return DiffResult(value=value, error=err, step=step, nfev=prob.evaluator.nfev, status=st)


def _sparse_jacobian(prob: _Problem, opts: _Options, meth: AbstractMethod, h: Any,
                     sparsity: object, sparse_output: object, full_output: bool) -> Any:
    """Coloured evaluation: one group direction per colour, then one division per nonzero."""
    from .result import Status

    _check_sparse_output(sparse_output)
    xp, dev = prob.xp, _device(prob.x_flat)
    m_out = prob.f0.shape[0]
    pattern = _pattern(prob, opts, sparsity)
    colours = pattern.colours
    n_colours = pattern.n_colours
    colour_dev = xp.asarray(colours, device=dev)
    values, status = _run(prob, opts, [GroupDirection(meth, h, colour_dev, 0)],
                          np.arange(n_colours).reshape(n_colours, 1))
    pick = xp.asarray(colours[pattern.cols] * m_out + pattern.rows, device=dev)
    cols = xp.asarray(pattern.cols, device=dev)
    rows = xp.asarray(pattern.rows, device=dev)
    h_cols = xp.take(h, cols, axis=0)
    st = xp.take(xp.reshape(status, (-1,)), pick, axis=0)
    st = xp.where(h_cols == 0, xp.asarray(int(Status.STEP_TOO_SMALL), dtype=xp.int8), st)
    safe_h = xp.where(h_cols == 0, xp.asarray(1.0, dtype=h_cols.dtype), h_cols)
    data = xp.take(xp.reshape(values, (-1,)), pick, axis=0) / safe_h ** meth.deriv
    data = xp.where(st == 0, data, xp.asarray(xp.nan, dtype=data.dtype))
    value = _sparse_value(prob, rows, cols, data, sparse_output)
    return _result(value, st, xp.reshape(h, prob.shapes[0]), prob.evaluator.nfev, full_output)


def gradient(f: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] = 0,
             method: object = "central", step: object = None, evaluation: str = "auto",
             chunk_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
             full_output: bool = False, batch_axis: int = 0, executor: object = None,
             retries: int = 0) -> Any:
    """Gradient of a scalar-valued ``f``; shape of the differentiated argument.

    Same parameters as :func:`jacobian`; ``f`` must return a scalar (shape ``()``; with
    ``evaluation="batched"``, shape ``(m,)`` for m stacked points).

    Returns
    -------
    array or tuple of arrays or DiffResult
        ``x.shape`` (a tuple for tuple ``argnums``), in x's namespace, dtype and device;
        NaN plus a status for elements whose stencil met NaN/inf or whose step vanished.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> g = nd.gradient(lambda x: (x ** 2).sum(), np.array([1.0, -2.0]))
    >>> float(np.max(np.abs(g - np.array([2.0, -4.0])))) < 1e-8
    True
    """
    return _jacobian(f, args, argnums, method, step, evaluation, chunk_size, memory_budget,
                     full_output, op="gradient", batch_axis=batch_axis, executor=executor,
                     retries=retries)


def hessian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int = 0,
    method: object = "central",
    step: object = None,
    evaluation: str = "auto",
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    full_output: bool = False,
    batch_axis: int = 0,
    executor: object = None,
    retries: int = 0,
) -> Any:
    """Hessian of ``f`` from second-derivative stencils, layout ``out + in + in``.

    Diagonal entries use the method's second-derivative stencil of the same family and
    order (central: ``[1, -2, 1] / h**2``); off-diagonal entries the mixed stencil, the
    tensor product of the first-derivative stencil with itself
    (central: ``[f(++) - f(+-) - f(-+) + f(--)] / (4 h_i h_j)``). Steps follow the rule
    for derivative order 2 (``eps**(1/4)`` for central). ``complex_step`` uses the mixed
    complex/central formula for every entry. The result is exactly symmetric.
    Parameters are those of :func:`jacobian` (``argnums`` an int).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> H = nd.hessian(lambda x: x[0] ** 2 * x[1], np.array([1.0, 2.0]))
    >>> float(np.max(np.abs(H - np.array([[4.0, 2.0], [2.0, 0.0]])))) < 1e-6
    True
    """
    _check_callable(f)
    if isinstance(argnums, (tuple, list)):
        raise TypeError("hessian takes one argnums int; for several arguments, differentiate a "
                        "function of their concatenation.")
    opts = _options(method, step, evaluation, chunk_size, memory_budget, batch_axis, executor,
                    retries)
    meth = _first_derivative_method(opts, "hessian")
    (a,), _ = _normalise_argnums(argnums, len(args))
    prob = _problem(f, args, (a,), opts, (f"args[{a}]",))
    xp = prob.xp
    n = prob.x_flat.shape[0]
    upper = np.triu_indices(n, k=1)
    pairs = np.stack(upper, axis=1).astype(np.int64) if n else np.zeros((0, 2), np.int64)
    diag_entries = np.arange(n).reshape(n, 1)
    driven = None
    if adaptive.is_driven(opts.rule):  # Ridders extrapolation per Hessian entry
        values, err, step_e, status = adaptive.hessian_adaptive(
            prob, meth, opts.rule, pairs, lambda d, e: _run(prob, opts, d, e))
        driven = (err, step_e)
    elif isinstance(meth, ComplexStep):
        from .stencils import central

        real_dir = central(order=2)
        h_c = _steps(prob, opts, meth, 1)
        h_r = _steps(prob, opts, real_dir, 1)
        both = np.concatenate([np.repeat(diag_entries, 2, axis=1), pairs], axis=0)
        values, status = _run(prob, opts, [BasisDirection(meth, h_c, 0),
                                           BasisDirection(real_dir, h_r, 1)], both)
        step_used = h_r
    else:
        h = _steps(prob, opts, meth, 2)
        diag_v, diag_s = _run(prob, opts, [BasisDirection(meth.with_deriv(2), h, 0)],
                              diag_entries)
        mix_v, mix_s = _run(prob, opts, [BasisDirection(meth, h, 0), BasisDirection(meth, h, 1)],
                            pairs)
        values, status = xp.concat([diag_v, mix_v], axis=0), xp.concat([diag_s, mix_s], axis=0)
        step_used = h
    # (i, j) -> row of [diagonal entries; upper pairs], symmetric.
    index = np.empty((n, n), dtype=np.int64)
    index[np.arange(n), np.arange(n)] = np.arange(n)
    index[upper] = n + np.arange(len(upper[0]))
    index[(upper[1], upper[0])] = n + np.arange(len(upper[0]))
    take = xp.asarray(index.reshape(-1), device=_device(prob.x_flat))
    out_shape, in_shape = prob.evaluator.out_shape, prob.shapes[0]

    def layout(v: Any) -> Any:
        full = xp.take(v, take, axis=0)  # (n*n, M)
        return xp.reshape(xp.permute_dims(full, (1, 0)), (*out_shape, *in_shape, *in_shape))

    if driven is not None:
        return (DiffResult(layout(values), layout(driven[0]), layout(driven[1]),
                           prob.evaluator.nfev, layout(status)) if full_output else layout(values))
    return _result(layout(values), layout(status), xp.reshape(step_used, in_shape),
                   prob.evaluator.nfev, full_output)


def _primals_tangents(primals: Any, tangents: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    single = not isinstance(primals, (tuple, list))
    p = (primals,) if single else tuple(primals)
    t = (tangents,) if not isinstance(tangents, (tuple, list)) else tuple(tangents)
    if len(p) != len(t):
        raise ValueError(f"primals and tangents must have the same length; got {len(p)} primals "
                         f"and {len(t)} tangents.")
    return p, t


def _flat_tangent(prob: _Problem, tangents: Sequence[Any]) -> Any:
    xp = prob.xp
    pieces = []
    for i, (tan, shape) in enumerate(zip(tangents, prob.shapes)):
        if isinstance(tan, (int, float, list, tuple)) or isinstance(tan, np.generic):
            tan = np.asarray(tan)
        tan_xp = array_namespace(tan)
        if tan_xp is not xp:
            raise TypeError(f"tangents[{i}] must come from the same array library as primals[{i}]; "
                            f"got {type(tan).__name__}.")
        if tuple(tan.shape) != shape:
            raise ValueError(f"tangents[{i}] has shape {tuple(tan.shape)} but primals[{i}] has "
                             f"shape {shape}; they must match.")
        pieces.append(xp.reshape(xp.astype(tan, prob.x_flat.dtype), (-1,)))
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=0)


def jvp(f: Callable[..., Any], primals: Any, tangents: Any, *, method: object = "central",
        step: object = None, evaluation: str = "auto", full_output: bool = False,
        batch_axis: int = 0, executor: object = None, retries: int = 0) -> Any:
    """Directional derivative ``J(x) @ v`` from one directional difference.

    ``primals`` and ``tangents`` are arrays or matching tuples (as ``jax.jvp``); every
    primal is perturbed along its tangent at once. The step is the element-scale step
    of the rule at ``max|x|`` divided by ``max|v|``. Costs ``len(stencil)`` evaluations
    (2 for central) besides f(x).

    Parameters
    ----------
    f : callable
        ``f(*primals)`` returns one array; called as in :func:`jacobian` for
        ``evaluation``.
    primals : array or tuple of arrays
        The point.
    tangents : array or tuple of arrays
        The direction ``v``, matching ``primals`` in shapes.
    method : str or method object
        As in :func:`jacobian` (first derivatives).
    step : None, float or step rule
        As in :func:`jacobian`; ``nd.steps.adaptive()`` adds an error estimate.
    evaluation : {"auto", "batched", "vmap", "loop"}
        As in :func:`jacobian`.
    full_output : bool
        Return ``(f(x), DiffResult)``.
    batch_axis : int
        As in :func:`jacobian`.

    Returns
    -------
    (f(x), J v) or (f(x), DiffResult)
        ``J v`` has f(x)'s shape, namespace, dtype and device.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x, v = np.array([1.0, 2.0]), np.array([1.0, -1.0])
    >>> y, t = nd.jvp(lambda x: x ** 3, x, v)
    >>> float(np.max(np.abs(t - 3 * x ** 2 * v))) < 1e-8
    True
    """
    _check_callable(f)
    opts = _options(method, step, evaluation, None, DEFAULT_MEMORY_BUDGET, batch_axis, executor,
                    retries)
    meth = _first_derivative_method(opts, "jvp")
    p, t = _primals_tangents(primals, tangents)
    prob = _problem(f, p, tuple(range(len(p))), opts, [f"primals[{i}]" for i in range(len(p))])
    xp = prob.xp
    v = _flat_tangent(prob, t)
    out_shape = prob.evaluator.out_shape
    f0 = xp.reshape(prob.f0, out_shape)
    if isinstance(opts.rule, adaptive.adaptive):
        parts = adaptive.vector_adaptive(prob, meth, opts.rule, v,
                                         lambda d, e, offsets=None: _run(prob, opts, d, e,
                                                                         offsets))
        return f0, _adaptive_result(xp, parts, prob.evaluator.nfev, out_shape, full_output,
                                    columns=False)
    step_t = _vector_step(prob, opts, meth, v, 1)
    values, status = _run(prob, opts, [VectorDirection(meth, step_t, v)], np.zeros((1, 0), int))
    value = xp.reshape(values, out_shape)
    return f0, _result(value, xp.reshape(status, out_shape), step_t, prob.evaluator.nfev,
                       full_output)


def hvp(f: Callable[..., Any], primals: Any, tangents: Any, *, method: object = "central",
        step: object = None, evaluation: str = "auto", chunk_size: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET, full_output: bool = False,
        batch_axis: int = 0, executor: object = None, retries: int = 0) -> Any:
    """Hessian-vector product ``H(x) @ v`` without forming H.

    Each element ``(H v)_i = d/dx_i d/dv f`` comes from the mixed stencil between the
    basis direction ``e_i`` and the direction ``v`` (4 evaluations per element for
    central), so the cost is linear in the input size. Layout ``out + in``; a scalar f
    gives the shape of x. Tuples of primals return a tuple.

    Parameters
    ----------
    f : callable
        ``f(*primals)`` returns one array (usually a scalar); called as in
        :func:`jacobian` for ``evaluation``.
    primals : array or tuple of arrays
        The point.
    tangents : array or tuple of arrays
        The direction ``v``, matching ``primals`` in shapes.
    method : str or method object
        As in :func:`jacobian`.
    step : None, float or step rule
        As in :func:`jacobian`; the steps follow the rule for derivative order 2.
    evaluation : {"auto", "batched", "vmap", "loop"}
        As in :func:`jacobian`.
    chunk_size : int, optional
        As in :func:`jacobian`.
    memory_budget : int
        As in :func:`jacobian`.
    full_output : bool
        Return a :class:`DiffResult`.
    batch_axis : int
        As in :func:`jacobian`.

    Returns
    -------
    array or tuple of arrays or DiffResult
        ``H v`` in the layout ``out.shape + in.shape``, in x's namespace, dtype, device.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x, v = np.array([1.0, 2.0]), np.array([1.0, 0.0])
    >>> hv = nd.hvp(lambda x: x[0] ** 2 * x[1], x, v)
    >>> float(np.max(np.abs(hv - np.array([4.0, 2.0])))) < 1e-6
    True
    """
    _check_callable(f)
    opts = _options(method, step, evaluation, chunk_size, memory_budget, batch_axis, executor,
                    retries)
    meth = _first_derivative_method(opts, "hvp")
    p, t = _primals_tangents(primals, tangents)
    prob = _problem(f, p, tuple(range(len(p))), opts, [f"primals[{i}]" for i in range(len(p))])
    xp = prob.xp
    v = _flat_tangent(prob, t)
    n = prob.x_flat.shape[0]
    if isinstance(meth, ComplexStep):
        from .stencils import central

        h = _steps(prob, opts, meth, 1)
        vec_method: AbstractMethod = central(order=2)
        step_t = _vector_step(prob, opts, vec_method, v, 1)
    else:
        h = _steps(prob, opts, meth, 2)
        vec_method = meth
        step_t = _vector_step(prob, opts, meth, v, 2)
    values, status = _run(prob, opts, [BasisDirection(meth, h, 0),
                                       VectorDirection(vec_method, step_t, v)],
                          np.arange(n).reshape(n, 1))
    out_shape = prob.evaluator.out_shape

    def split(a: Any) -> list[Any]:
        full = xp.permute_dims(a, (1, 0))  # (M, n)
        pieces, start = [], 0
        for shape in prob.shapes:
            size = math.prod(shape)
            pieces.append(xp.reshape(full[:, start:start + size], (*out_shape, *shape)))
            start += size
        return pieces

    bounds = np.cumsum([0] + [math.prod(shape) for shape in prob.shapes])
    steps = [h[int(lo):int(hi)] for lo, hi in zip(bounds[:-1], bounds[1:])]
    res = [_result(v_, s_, xp.reshape(st, shape), prob.evaluator.nfev, full_output)
           for v_, s_, st, shape in zip(split(values), split(status), steps, prob.shapes)]
    return res[0] if not isinstance(primals, (tuple, list)) else tuple(res)


def derivative(f: Callable[..., Any], x: Any, *, method: object = "central",
               step: object = None, full_output: bool = False) -> Any:
    """Elementwise derivative of a vectorised ``f: R -> R`` at every element of ``x``.

    ``f`` receives an array of x's shape and must return an array of the same shape
    whose element i depends only on element i. All elements are perturbed at once, so
    the cost is ``len(stencil)`` calls regardless of x's size. ``method`` may be any
    stencil, including higher derivatives (``nd.central(order=4, deriv=2)``).

    Parameters
    ----------
    f : callable
        ``f(x)`` -> array of x's shape, elementwise (a ValueError names the shape
        otherwise; use :func:`jacobian` for general functions).
    x : array
        The points (any shape, real floating dtype), numpy, torch, jax, cupy or any
        array-API array.
    method : str or method object
        As in :func:`jacobian`; its ``deriv`` is the derivative order.
    step : None, float or step rule
        As in :func:`jacobian` (``adaptive()`` and ``bound()`` give error estimates).
    full_output : bool
        Return a :class:`DiffResult`.

    Returns
    -------
    array or DiffResult
        x's shape, namespace, dtype and device; NaN plus a status (never an exception)
        where f is not finite at a stencil point or the step vanished.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.linspace(0.0, 3.0, 7)
    >>> d = nd.derivative(np.exp, x)
    >>> float(np.max(np.abs(d - np.exp(x)) / np.exp(x))) < 1e-9
    True
    """
    _check_callable(f)
    opts = _options(method, step, "loop", None, DEFAULT_MEMORY_BUDGET)
    meth = opts.method
    prob = _problem(f, (x,), (0,), opts, ("x",))
    xp = prob.xp
    if prob.evaluator.out_shape != prob.shapes[0]:
        raise ValueError(f"derivative needs an elementwise f returning x's shape "
                         f"{prob.shapes[0]}; f returned {prob.evaluator.out_shape}. Use "
                         "nd.jacobian for general functions.")
    if adaptive.is_driven(opts.rule):
        parts = adaptive.elementwise(prob, meth, opts.rule,
                                     lambda m, h, offsets=None: _elementwise(prob, m, h,
                                                                             offsets))
        return _adaptive_result(xp, parts, prob.evaluator.nfev, prob.shapes[0], full_output,
                                columns=False)
    h = _steps(prob, opts, meth, meth.deriv)
    # A vector direction of ones with per-element steps: perturb all elements at once.
    values, status = _elementwise(prob, meth, h)

    def retry(m: AbstractMethod, rows: np.ndarray, factor: float) -> tuple[Any, Any]:
        pick = xp.asarray(rows, device=_device(h))
        return tuple(xp.take(a, pick, axis=0)  # type: ignore[return-value]
                     for a in _elementwise(prob, m, h * factor))

    # a domain edge between x - h and x + h: the one-sided stencil on the finite side
    values, status = reliability.one_sided_retry(xp, meth, prob.f0, values, status, retry)
    shape = prob.shapes[0]
    return _result(xp.reshape(values, shape), xp.reshape(status, shape), xp.reshape(h, shape),
                   prob.evaluator.nfev, full_output)


def _elementwise(prob: _Problem, meth: AbstractMethod, h: Any,
                 offsets: Sequence[float] | None = None) -> tuple[Any, Any]:
    """Elementwise differences, (n,) values and status. With ``offsets`` (a real
    stencil) the values are the raw ``f(x + o h) - f(x)`` per offset, (n, len)."""
    from .engine import method_points
    from .result import Status

    xp, x = prob.xp, prob.x_flat
    is_complex = isinstance(meth, ComplexStep)
    work = xp.astype(x, xp.complex64 if x.dtype == xp.float32 else xp.complex128) if (
        is_complex) else x
    acc = None
    raw = []
    finite = xp.isfinite(prob.f0)
    points = method_points(meth) if offsets is None else [(float(o), 1.0) for o in offsets]
    for offset, weight in points:
        with np.errstate(all="ignore"):  # inf steps or x + h beyond the largest float:
            shift = xp.astype(h, work.dtype) * offset if isinstance(offset, complex) else (
                h * offset)
            point = work + shift  # NON_FINITE below
        y = prob.evaluator(xp.expand_dims(point, 0))[0, :]
        finite = finite & xp.isfinite(y)
        with np.errstate(all="ignore"):  # inf - inf where f is not finite: status says so
            if offsets is not None:
                raw.append(y - prob.f0)
                continue
            term = (y if is_complex else y - prob.f0) * weight
            acc = term if acc is None else acc + term
    if offsets is not None:
        acc = xp.stack(raw, axis=1)
    assert acc is not None
    if is_complex:
        acc = xp.real(acc)
    with np.errstate(all="ignore"):
        if offsets is None:
            acc = acc / xp.where(h == 0, xp.asarray(1.0, dtype=h.dtype), h) ** meth.deriv
    def code(s: Status) -> Any:
        return xp.asarray(int(s), dtype=xp.int8)

    status = xp.where(h == 0, code(Status.STEP_TOO_SMALL),
                      xp.where(finite & xp.isfinite(h), code(Status.SUCCESS),
                               code(Status.NON_FINITE)))
    ok = status == 0 if offsets is None else xp.expand_dims(status == 0, 1)
    return xp.where(ok, acc, xp.asarray(xp.nan, dtype=acc.dtype)), status
