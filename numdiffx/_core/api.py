"""Public operations: derivative, jacobian, gradient, hessian, jvp, hvp.

Each validates its arguments once at the boundary (``validation``), builds the problem
(flat x and f(x)) and the operation's plan, and hands the plan to the step rule, which
runs it. No numerics here: plans (``plans/``) describe operations, step rules
(``strategies/``) pick steps and combine evaluations, ``evaluation/`` calls f.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .evaluation.points import DEFAULT_MEMORY_BUDGET
from .fastlane import NOT_TAKEN, fast_jacobian
from .plans.coloured import ColouredPlan
from .plans.columns import ColumnsPlan
from .plans.directional import DirectionalPlan
from .plans.elementwise import ElementwisePlan
from .problem import Problem, build_problem
from .sparse import SparsityPattern, detect
from .treeops import any_tree, refused_tree_output, tree_jacobian, tree_operation
from .validation import (
    Options,
    argnums_iv,
    callable_iv,
    check_same_library,
    flat_tangent_iv,
    options_iv,
    sparse_output_iv,
    tangents_iv,
)

__all__ = ["derivative", "gradient", "jacobian", "jvp"]


def _first_derivative(opts: Options, op: str) -> None:
    if opts.method.deriv != 1:
        raise ValueError(f"{op} needs a first-derivative method; got deriv={opts.method.deriv}. "
                         "Use nd.derivative for higher derivatives of elementwise functions, or "
                         "nd.hessian for second derivatives.")


def _pattern(prob: Problem, opts: Options, sparsity: object) -> SparsityPattern:
    """The SparsityPattern of this call: detected, or normalised from the user's."""
    if isinstance(sparsity, str):
        if sparsity != "detect":
            raise ValueError(f"sparsity={sparsity!r} is not known; use 'detect', a boolean "
                             "mask, a scipy.sparse matrix, a (rows, cols) pair or a pattern.")
        return detect(prob, opts.chunk_size, opts.memory_budget, nan_probe=True, seed=0)
    return SparsityPattern.from_any(sparsity, (prob.m_out, prob.n))


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
    f0: Any = None,
    checkpoint: object = None,
    progress: object = None,
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
    *args : arrays or parameter trees
        Positional arguments of ``f``; those selected by ``argnums`` are differentiated. A
        tree (dict, list, tuple, namedtuple, jax pytree) gives jax.jacrev's nested layout.
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
    f0 : array, optional
        f(x) as the caller already has it (a solver does): reused instead of evaluated,
        one evaluation fewer, results identical. Unbatched, f's own output shape.
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
    checkpoint : str or path-like, optional
        An SQLite file keeping every evaluation of f as it completes. The same call with
        the same file evaluates only what is missing (and f(x), which fingerprints f)
        and returns the same bits; another f, x or options never reads it; the same call
        whose f(x) changed is refused. See ``docs/expensive-simulations.md``.
    progress : None, bool or callable
        None: a display with the time left past 2 s (tqdm if installed); True: at once;
        False: never; or a callable ``progress(done, total)``.

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
                     full_output, "jacobian", batch_axis, sparsity, sparse_output, executor,
                     retries, f0, checkpoint, progress)


def _jacobian(f: Callable[..., Any], args: Sequence[Any], argnums: object, method: object,
              step: object, evaluation: object, chunk_size: object, memory_budget: object,
              full_output: bool, op: str, batch_axis: object = 0, sparsity: object = None,
              sparse_output: bool = True, executor: object = None, retries: object = 0,
              f0: Any = None, checkpoint: object = None, progress: object = None) -> Any:
    try:
        fast = NOT_TAKEN if checkpoint is not None or progress is not None else fast_jacobian(
            f, args, argnums, method, step, evaluation, chunk_size, memory_budget, full_output,
            op, batch_axis, sparsity, executor, retries, f0)  # the engine records and reports
        if fast is not NOT_TAKEN:
            return fast
        if not any_tree(args, argnums):  # trees: dicts, lists of arrays, namedtuples ...
            return _engine_jacobian(f, args, argnums, method, step, evaluation, chunk_size,
                                    memory_budget, full_output, op, batch_axis, sparsity,
                                    sparse_output, executor, retries, f0, checkpoint, progress)
    except TypeError as exc:
        if not refused_tree_output(exc):
            raise  # else f's value is a tree: the tree path evaluates f afresh
    return tree_jacobian(_jacobian, f, args, argnums, (
        method, step, evaluation, chunk_size, memory_budget, full_output, op, batch_axis,
        sparsity, sparse_output, executor, retries, f0, checkpoint, progress))


def _engine_jacobian(f: Callable[..., Any], args: Sequence[Any], argnums: object,
                     method: object, step: object, evaluation: object, chunk_size: object,
                     memory_budget: object, full_output: bool, op: str, batch_axis: object,
                     sparsity: object, sparse_output: bool, executor: object,
                     retries: object, f0: Any, checkpoint: object = None,
                     progress: object = None) -> Any:
    callable_iv(f)
    opts = options_iv(method, step, evaluation, chunk_size, memory_budget, batch_axis, executor,
                      retries, operation=op if sparsity is None else "sparse jacobian",
                      checkpoint=checkpoint, progress=progress)
    _first_derivative(opts, op)
    nums, as_tuple = argnums_iv(argnums, len(args))
    if sparsity is not None:
        sparse_output_iv(sparse_output)
        if as_tuple:
            raise TypeError("sparsity= works with one argnums int; compute each argument's "
                            "sparse Jacobian in its own call.")
    if as_tuple:  # each argument is prepared on its own below: compare libraries first
        check_same_library(tuple(args), nums, opts.method)
    results = []
    first: Problem | None = None
    for a in nums:
        prob = build_problem(f, args, (a,), opts, (f"args[{a}]",), known=first, f0=f0)
        if first is None:
            first = prob
            if op == "gradient" and prob.out_shape != ():
                raise ValueError(f"gradient needs a scalar-valued f; f returned shape "
                                 f"{prob.out_shape}. Use nd.jacobian instead.")
        if sparsity is not None:
            plan: Any = ColouredPlan(prob, opts.method, _pattern(prob, opts, sparsity),
                                     sparse_output=bool(sparse_output),
                                     chunk_size=opts.chunk_size,
                                     memory_budget=opts.memory_budget)
        else:
            plan = ColumnsPlan(prob, opts.method, chunk_size=opts.chunk_size,
                               memory_budget=opts.memory_budget)
        results.append(plan.compute(opts.rule, full_output))
    return tuple(results) if as_tuple else results[0]


def gradient(f: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] = 0,
             method: object = "central", step: object = None, evaluation: str = "auto",
             chunk_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
             full_output: bool = False, batch_axis: int = 0, executor: object = None,
             retries: int = 0, f0: Any = None, checkpoint: object = None,
             progress: object = None) -> Any:
    """Gradient of a scalar-valued ``f``; shape of the differentiated argument.

    Same parameters as :func:`jacobian` (``f0``, ``checkpoint``, ``progress`` too); ``f``
    returns a scalar (shape ``()``; with ``evaluation="batched"``, ``(m,)`` for m points).

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
                     full_output, "gradient", batch_axis, None, True, executor, retries, f0,
                     checkpoint, progress)


@tree_operation("jvp")
def jvp(f: Callable[..., Any], primals: Any, tangents: Any, *, method: object = "central",
        step: object = None, evaluation: str = "auto", full_output: bool = False,
        batch_axis: int = 0, executor: object = None, retries: int = 0,
        f0: Any = None, checkpoint: object = None, progress: object = None) -> Any:
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
    f0 : array, optional
        f(x) as the caller already has it (a solver does): reused instead of evaluated,
        one evaluation fewer, results identical. Unbatched, f's own output shape.
    full_output : bool
        Return ``(f(x), DiffResult)``.
    batch_axis : int
        As in :func:`jacobian`.
    checkpoint, progress : as in :func:`jacobian`

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
    callable_iv(f)
    opts = options_iv(method, step, evaluation, None, DEFAULT_MEMORY_BUDGET, batch_axis, executor,
                      retries, operation="jvp", checkpoint=checkpoint, progress=progress)
    _first_derivative(opts, "jvp")
    p, t = tangents_iv(primals, tangents)
    prob = build_problem(f, p, tuple(range(len(p))), opts,
                         [f"primals[{i}]" for i in range(len(p))], f0=f0)
    v = flat_tangent_iv(prob.xp, prob.dtype, prob.shapes, t)
    plan = DirectionalPlan(prob, opts.method, v)
    value = prob.xp.reshape(prob.f0, prob.out_shape)
    if prob.evaluator.narrow_dtype is not None:  # f's own value, in f's own dtype
        value = prob.xp.astype(value, prob.evaluator.narrow_dtype)
    return value, plan.compute(opts.rule, full_output)


@tree_operation("derivative")
def derivative(f: Callable[..., Any], x: Any, *, method: object = "central",
               step: object = None, full_output: bool = False, f0: Any = None,
               checkpoint: object = None, progress: object = None) -> Any:
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
    f0 : array, optional
        f(x) as the caller already has it (a solver does): reused instead of evaluated,
        one evaluation fewer, results identical. Unbatched, f's own output shape.
    full_output : bool
        Return a :class:`DiffResult`.
    checkpoint, progress : as in :func:`jacobian`

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
    callable_iv(f)
    opts = options_iv(method, step, "loop", None, DEFAULT_MEMORY_BUDGET, operation="derivative",
                      checkpoint=checkpoint, progress=progress)
    prob = build_problem(f, (x,), (0,), opts, ("x",), f0=f0)
    plan = ElementwisePlan(prob, opts.method)
    return plan.compute(opts.rule, full_output)
