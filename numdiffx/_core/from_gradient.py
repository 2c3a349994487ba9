"""Second derivatives from a known gradient ``g``: ``hessian(grad=g)``, ``hvp(grad=g)``.

A Hessian is the Jacobian of the gradient (:class:`ColumnsPlan` on a problem built from
``g``), symmetrised; a Hessian-vector product is ONE directional difference of ``g``
(:class:`DirectionalPlan`). Nothing new is computed here: the plans and step rules are
the first-derivative ones, with ``g`` in the place of ``f`` and the caller's ``g(x)``
(``grad0``) in the place of ``f0``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .plans.columns import ColumnsPlan
from .plans.directional import DirectionalPlan
from .problem import Problem, build_problem
from .result import DiffResult, Status
from .validation import Options, flat_tangent_iv

__all__ = ["hessian_from_gradient", "hvp_from_gradient", "symmetrised"]


def _gradient_problem(grad: Callable[..., Any], args: Sequence[Any], argnum: int,
                      opts: Options, names: Sequence[str], grad0: Any) -> Problem:
    prob = build_problem(grad, args, (argnum,), opts, names, f0=grad0)
    if prob.out_shape != prob.shapes[0]:
        raise ValueError(f"grad must return the gradient of a scalar f, an array of "
                         f"{names[0]}'s shape {prob.shapes[0]}; it returned shape "
                         f"{prob.out_shape}. For a vector-valued f, differentiate each "
                         "output's gradient, or use nd.hessian(f, ...) without grad=.")
    return prob


def hessian_from_gradient(grad: Callable[..., Any], args: Sequence[Any], argnum: int,
                          opts: Options, grad0: Any, full_output: bool) -> Any:
    """The Jacobian of ``grad`` with respect to ``args[argnum]``, symmetrised."""
    prob = _gradient_problem(grad, args, argnum, opts, (f"args[{argnum}]",), grad0)
    plan = ColumnsPlan(prob, opts.method, chunk_size=opts.chunk_size,
                       memory_budget=opts.memory_budget)
    jac = plan.compute(opts.rule, True)
    return symmetrised(prob.xp, jac, prob.n, full_output)


def hvp_from_gradient(grad: Callable[..., Any], x: Any, tangent: Any, opts: Options,
                      grad0: Any, full_output: bool) -> Any:
    """``H v`` as one directional difference of ``grad`` along ``v``."""
    prob = _gradient_problem(grad, (x,), 0, opts, ("primals",), grad0)
    v = flat_tangent_iv(prob.xp, prob.dtype, prob.shapes, (tangent,))
    plan = DirectionalPlan(prob, opts.method, v)
    return plan.compute(opts.rule, full_output)


def symmetrised(xp: Any, jac: DiffResult, n: int, full_output: bool) -> Any:
    """``(J + J.T) / 2`` of a gradient's Jacobian ``J`` (layout ``in + in``).

    Where one of ``J[i, j]``, ``J[j, i]`` failed (NaN: NON_FINITE or STEP_TOO_SMALL) and
    the other did not, the other is the entry (the Hessian is symmetric), with its
    status. Otherwise a pair's status is the first of the two that is not SUCCESS. The
    error estimate is the larger of the rule's estimates averaged over the pair, which
    bounds the error of the average when each bounds its own, and half the asymmetry
    ``|J[i, j] - J[j, i]| / 2``, which never exceeds that bound for the true errors: a
    rule whose estimate misses the disagreement is raised to it. None where the rule
    gives no estimate.
    """
    shape = tuple(jac.value.shape)

    def square(a: Any) -> tuple[Any, Any]:
        a = xp.reshape(a, (n, n))
        return a, xp.permute_dims(a, (1, 0))

    value, value_t = square(jac.value)
    status, status_t = square(jac.status)

    def failed(s: Any) -> Any:
        return (s == int(Status.NON_FINITE)) | (s == int(Status.STEP_TOO_SMALL))

    mine, theirs = failed(status), failed(status_t)
    take_t, take_own = mine & ~theirs, theirs & ~mine
    sym = xp.where(take_t, value_t, xp.where(take_own, value, (value + value_t) / 2))
    sym_status = xp.where(take_t, status_t, xp.where(
        take_own | (status != int(Status.SUCCESS)), status, status_t))
    if not full_output:
        return xp.reshape(sym, shape)
    error = None
    if jac.error is not None:
        err, err_t = square(jac.error)
        pair = xp.maximum((err + err_t) / 2, xp.abs(value - value_t) / 2)
        error = xp.reshape(xp.where(take_t, err_t, xp.where(take_own, err, pair)), shape)
    return DiffResult(value=xp.reshape(sym, shape), error=error, step=jac.step,
                      nfev=jac.nfev, status=xp.reshape(sym_status, shape))
