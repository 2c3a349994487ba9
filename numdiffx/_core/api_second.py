"""Public second-order operations: hessian and hvp (from f, or from a known gradient).

Split from :mod:`numdiffx._core.api` (which holds the first-order operations and the
shared boundary checks) to keep each module readable; validation at the boundary,
numerics in plans and step rules, as there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .api import _first_derivative
from .evaluation.points import DEFAULT_MEMORY_BUDGET
from .from_gradient import hessian_from_gradient, hvp_from_gradient
from .plans.directional import HvpPlan
from .plans.hessian import HessianPlan
from .problem import build_problem
from .sparse_hessian import sparse_hessian
from .stencils import resolve_method
from .treeops import tree_operation
from .validation import (
    argnums_iv,
    callable_iv,
    f0_iv,
    flat_tangent_iv,
    input_iv,
    options_iv,
    tangents_iv,
)

__all__ = ["hessian", "hvp"]


def _second_iv(f: object, method: object, f0: object, grad: object, grad0: object
               ) -> tuple[object, bool]:
    """Checks shared by hessian and hvp: (the method, whether g is differenced)."""
    if grad is None:
        callable_iv(f)
        if grad0 is not None:
            raise ValueError("grad0= is the gradient at x that grad= would return; it needs "
                             "grad=. Pass grad=g (the gradient function) as well, or drop "
                             "grad0 (f0= is f's own value).")
        return ("central" if method is None else method), False
    callable_iv(grad, "grad")
    if f is not None:
        callable_iv(f)
    if f0 is not None:
        raise ValueError("f0= is f(x), which is not needed when grad= is given (the "
                         "gradient is differenced, f is never called); pass the known "
                         "gradient g(x) as grad0= instead.")
    return ("forward" if method is None else method), True


def _grad0_iv(grad0: Any, x: Any, name: str, method: object) -> None:
    """grad0 (when given) is an array of x's library and shape."""
    if grad0 is None:
        return
    xp, xv = input_iv(x, name, resolve_method(method))
    g0 = f0_iv(grad0, xp, "grad0")
    if tuple(g0.shape) != tuple(xv.shape):
        raise ValueError(f"grad0 must be the gradient at x, of {name}'s shape "
                         f"{tuple(xv.shape)}; got shape {tuple(g0.shape)}.")


@tree_operation("hessian")
def hessian(
    f: Callable[..., Any] | None,
    *args: Any,
    argnums: int = 0,
    method: object = None,
    step: object = None,
    evaluation: str = "auto",
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    full_output: bool = False,
    batch_axis: int = 0,
    executor: object = None,
    retries: int = 0,
    f0: Any = None,
    grad: Callable[..., Any] | None = None,
    grad0: Any = None,
    sparsity: object = None,
    sparse_output: bool = True,
    checkpoint: object = None,
    progress: object = None,
) -> Any:
    """Hessian of ``f``: from second-derivative stencils, or from a known gradient.

    Without ``grad``: diagonal entries use the method's second-derivative stencil of the
    same family and order (central: ``[1, -2, 1] / h**2``); off-diagonal entries the
    mixed stencil, the tensor product of the first-derivative stencil with itself
    (central: ``[f(++) - f(+-) - f(-+) + f(--)] / (4 h_i h_j)``), ``2 n**2 + 1``
    evaluations of f. Steps follow the rule for derivative order 2 (``eps**(1/4)`` for
    central): ``h_i`` is the diagonal's step, and the mixed entry (i, j) is stepped at
    ``(rho h_i, rho h_j)``, where the mixed stencil balances truncation against
    round-off (``rho = 1/2`` for central, as statsmodels' ``approx_hess3``; 1 for forward
    and backward); ``steps.fixed(r.step)`` reproduces such a call.

    The default (central, ``step=None``) measures before it steps the mixed entries:
    the diagonal on ``x +- h e_i, x +- 2 h e_i`` (the five-point second derivative, the
    Richardson extrapolation of the three-point ones at ``h`` and ``2 h``), whose fourth
    difference gives each variable's step ``h*_i`` where the mixed stencil's truncation
    and round-off balance (within ``[h/16, 2 h]``); the mixed entries at ``rho h*``.
    ``2 n**2 + 2 n + 1`` evaluations (``approx_hess3``: ``2 n (n + 1)``), under
    ``jax.jit`` too; standard errors of a logit 1.2e-6 -> 3.6e-7 off, a Poisson
    regression 6.2e-6 -> 6.4e-8 (``docs/standard-errors.md``). ``DiffResult.step``
    holds the ``h*_i``. Where the points at ``h`` and ``2 h`` disagree (a step across a
    domain edge) the diagonal is not SUCCESS; where f is NaN at ``x +- 2 h`` only, the
    diagonal is the three-point value at ``h``. ``complex_step`` uses the mixed
    complex/central formula for every entry.
    Layout ``out + in + in``; the result is exactly symmetric.

    With ``grad=g`` (the gradient of a scalar f): the Jacobian of ``g`` by
    first-derivative stencils, symmetrised ``(J + J.T) / 2``; f is never called. The
    default method is then ``"forward"``: ``n`` calls of g (plus ``g(x)`` unless
    ``grad0`` is given), the cheapest stencil, and as accurate as the central Hessian
    from values of f (both ``O(sqrt(eps))`` relative, at steps ``2 sqrt(eps) |x|``);
    SciPy's ``hess='2-point'`` is the same difference. ``method="central"`` costs
    ``2 n`` calls for ``O(eps**(2/3))``.

    The parameters are those of :func:`jacobian` (``argnums`` an int, ``f0``,
    ``checkpoint`` and ``progress`` as there); these differ or are added:

    Parameters
    ----------
    f : callable or None
        ``f(*args)``, scalar (or any shape: layout ``out + in + in``). May be None when
        ``grad`` is given.
    method : str or method object, optional
        Default ``"central"``; with ``grad``, ``"forward"``.
    grad : callable, optional
        ``grad(*args)`` returns the gradient of a scalar f with respect to
        ``args[argnums]`` (that argument's shape), called as f would be under
        ``evaluation`` (``"batched"``: a leading batch axis in and out). Its Jacobian,
        symmetrised, is the Hessian. The error estimate takes ``grad`` to be exact
        to rounding; a gradient that is itself approximate (a finite difference, an
        iterative solve) carries errors the estimate cannot see: say how large with
        ``step=nd.steps.adaptive(noise=...)``.
    grad0 : array, optional
        ``grad(*args)`` as the caller already has it (a solver does): reused instead of
        evaluated, one call fewer, results identical. Needs ``grad``; ``f0`` is refused
        with ``grad`` (f's value is not used).
    sparsity : None, "detect", bool array, scipy.sparse matrix, (rows, cols) or SparsityPattern
        The Hessian's structurally nonzero entries ``(x.size, x.size)``, symmetric (else
        refused); scalar f. From f only the pattern's entries are computed (as the dense
        Hessian computes them: diagonal plus one mixed stencil per pair); with ``grad``,
        the columns of g's Jacobian are grouped by a star colouring. ``"detect"`` finds
        the pattern at x first (``full_output``: ``r.pattern``, to reuse). See
        ``docs/sparse-hessians.md``.
    sparse_output : bool
        With ``sparsity``: a sparse matrix as :func:`jacobian` returns (default), or dense.

    Returns
    -------
    array or DiffResult
        With ``grad``: ``x.shape + x.shape``. ``full_output``: ``nfev`` counts calls of
        g; ``error`` is the larger of the rule's estimate averaged over ``(i, j)`` and
        ``(j, i)`` and half their disagreement ``|J_ij - J_ji| / 2`` (None where the rule
        gives no estimate); ``step`` is the step of each column of g's Jacobian. Where
        one of a pair failed (NaN) the other gives the entry.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> H = nd.hessian(lambda x: x[0] ** 2 * x[1], np.array([1.0, 2.0]))
    >>> float(np.max(np.abs(H - np.array([[4.0, 2.0], [2.0, 0.0]])))) < 1e-6
    True
    >>> g = lambda x: np.array([2 * x[0] * x[1], x[0] ** 2])      # its gradient
    >>> r = nd.hessian(None, np.array([1.0, 2.0]), grad=g, full_output=True)
    >>> float(np.max(np.abs(r.value - np.array([[4.0, 2.0], [2.0, 0.0]])))) < 1e-6, r.nfev
    (True, 3)
    """
    method, from_grad = _second_iv(f, method, f0, grad, grad0)
    if isinstance(argnums, (tuple, list)):
        raise TypeError("hessian takes one argnums int; for several arguments, differentiate a "
                        "function of their concatenation.")
    operation = "hessian_from_gradient" if from_grad else "hessian"
    if from_grad and sparsity is not None:
        operation = "sparse jacobian"  # of g
    opts = options_iv(method, step, evaluation, chunk_size, memory_budget, batch_axis, executor,
                      retries, operation=operation, checkpoint=checkpoint,
                      progress=progress)
    _first_derivative(opts, "hessian")
    (a,), _ = argnums_iv(argnums, len(args))
    if from_grad:
        _grad0_iv(grad0, args[a], f"args[{a}]", method)
    if sparsity is not None:
        return sparse_hessian(f, grad, args, a, opts, sparsity, sparse_output, f0, grad0,
                              full_output)
    if from_grad:
        assert grad is not None
        return hessian_from_gradient(grad, args, a, opts, grad0, full_output)
    assert f is not None
    prob = build_problem(f, args, (a,), opts, (f"args[{a}]",), f0=f0, second_order=True)
    plan = HessianPlan(prob, opts.method, chunk_size=opts.chunk_size,
                       memory_budget=opts.memory_budget)
    return plan.compute(opts.rule, full_output)


@tree_operation("hvp")
def hvp(f: Callable[..., Any] | None, primals: Any, tangents: Any, *, method: object = None,
        step: object = None, evaluation: str = "auto", chunk_size: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET, full_output: bool = False,
        batch_axis: int = 0, executor: object = None, retries: int = 0,
        f0: Any = None, grad: Callable[..., Any] | None = None, grad0: Any = None,
        checkpoint: object = None, progress: object = None) -> Any:
    """Hessian-vector product ``H(x) @ v`` without forming H.

    Without ``grad``: each element ``(H v)_i = d/dx_i d/dv f`` comes from the mixed
    stencil between the basis direction ``e_i`` and the direction ``v`` (4 evaluations
    per element for central), so the cost is linear in the input size. Layout
    ``out + in``; a scalar f gives the shape of x. Tuples of primals return a tuple.

    With ``grad=g`` (the gradient of a scalar f): ONE directional difference of g along
    v, ``(g(x + t v) - g(x)) / t`` by default (``"forward"``): one call of g per
    product when ``grad0 = g(x)`` is given (a solver's Newton-CG inner loop calls hvp
    many times at one x), two without; ``method="central"`` costs two calls (three
    without ``grad0``) for ``O(eps**(2/3))`` instead of ``O(sqrt(eps))`` relative. The
    step along v is the rule's first-derivative step at ``max|x|`` divided by
    ``max|v|``. f is never called.

    Parameters
    ----------
    f : callable or None
        ``f(*primals)`` returns one array (usually a scalar); called as in
        :func:`jacobian` for ``evaluation``. May be None when ``grad`` is given.
    primals : array or tuple of arrays
        The point (one array, or a tuple of one, with ``grad``).
    tangents : array or tuple of arrays
        The direction ``v``, matching ``primals`` in shapes.
    method : str or method object, optional
        As in :func:`jacobian`. Default ``"central"``; with ``grad``, ``"forward"``.
    step : None, float or step rule
        As in :func:`jacobian`; without ``grad`` the steps follow the rule for
        derivative order 2.
    evaluation : {"auto", "batched", "vmap", "loop"}
        As in :func:`jacobian` (applies to ``grad`` when given).
    chunk_size : int, optional
        As in :func:`jacobian`.
    memory_budget : int
        As in :func:`jacobian`.
    f0 : array, optional
        f(x) as the caller already has it (a solver does): reused instead of evaluated,
        one evaluation fewer, results identical. Unbatched, f's own output shape.
        Refused with ``grad`` (f's value is not used; pass ``grad0``).
    grad : callable, optional
        ``grad(x)`` returns the gradient of a scalar f at x (x's shape).
    grad0 : array, optional
        ``grad(x)`` as the caller already has it: reused, one call fewer, results
        identical. Needs ``grad``.
    full_output : bool
        Return a :class:`DiffResult` (``nfev`` counts calls of g with ``grad``).
    batch_axis : int
        As in :func:`jacobian`.
    checkpoint, progress : as in :func:`jacobian`

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
    >>> g = lambda x: np.array([2 * x[0] * x[1], x[0] ** 2])      # its gradient
    >>> r = nd.hvp(None, x, v, grad=g, grad0=g(x), full_output=True)
    >>> float(np.max(np.abs(r.value - np.array([4.0, 2.0])))) < 1e-6, r.nfev
    (True, 1)
    """
    method, from_grad = _second_iv(f, method, f0, grad, grad0)
    opts = options_iv(method, step, evaluation, chunk_size, memory_budget, batch_axis, executor,
                      retries, operation="hvp_from_gradient" if from_grad else "hvp",
                      checkpoint=checkpoint, progress=progress)
    _first_derivative(opts, "hvp")
    p, t = tangents_iv(primals, tangents)
    if from_grad:
        assert grad is not None
        if len(p) != 1:
            raise TypeError(f"with grad=, primals must be one array or a one-element tuple "
                            f"(grad returns the gradient with respect to it); got {len(p)} "
                            "primals. Concatenate several arguments into one.")
        _grad0_iv(grad0, p[0], "primals", method)
        out = hvp_from_gradient(grad, p[0], t[0], opts, grad0, full_output)
        # a tuple of primals gives a tuple, as without grad=
        return (out,) if isinstance(primals, (tuple, list)) else out
    assert f is not None
    prob = build_problem(f, p, tuple(range(len(p))), opts,
                         [f"primals[{i}]" for i in range(len(p))], f0=f0, second_order=True)
    v = flat_tangent_iv(prob.xp, prob.dtype, prob.shapes, t)
    plan = HvpPlan(prob, opts.method, v, chunk_size=opts.chunk_size,
                   memory_budget=opts.memory_budget,
                   as_tuple=isinstance(primals, (tuple, list)))
    return plan.compute(opts.rule, full_output)
