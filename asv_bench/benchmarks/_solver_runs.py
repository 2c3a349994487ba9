"""One solve of one problem with one derivative provider, counted and timed.

Providers (``PROVIDERS``): ``exact`` (the hand-written derivatives), SciPy's own finite
differences (``scipy-2point`` forward, ``scipy-3point`` central: the solver's string
options, with f(x) reused as the solver does), ``numdiffx-forward`` /
``numdiffx-central`` / ``numdiffx-adaptive`` (the ``numdiffx.scipy`` callables), and
``numdifftools`` (its default central Richardson Jacobian, dense problems only).

Every run counts the calls of the user's function (or gradient) that actually happened,
whoever made them, so the totals compare like with like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import numdiffx as nd

from ._solver_problems import LeastSquares, Minimisation, Ode

PROVIDERS = ("exact", "scipy-2point", "scipy-3point", "numdiffx-forward", "numdiffx-central",
             "numdiffx-adaptive", "numdifftools")
#: the SciPy finite difference of the same order as each numdiffx provider
SCIPY_FD = {"scipy-2point": "2-point", "scipy-3point": "3-point"}
SAME_ORDER = {"numdiffx-forward": "scipy-2point", "numdiffx-central": "scipy-3point",
              "numdiffx-adaptive": "scipy-3point"}


@dataclass
class Run:
    """What one solve cost and reached."""

    problem: str
    provider: str
    points: float  # finite-difference evaluations per derivative (f(x) reused: not counted)
    derivatives: int  # Jacobians / Hessians / products computed
    evaluations: int  # every call of the user's function (or gradient) in the solve
    iterations: int  # the solver's own count (njev, steps, nit)
    answer: Any  # the solution (x, or y at the end)
    value: float  # the objective at the answer (least squares: sum f_i**2)
    seconds: float  # wall time of the whole solve
    success: bool


class Counted:
    """A function that counts its calls."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.fn(*args)


def _numdiffx_options(provider: str) -> dict[str, Any]:
    return {"numdiffx-forward": {"method": "forward"},
            "numdiffx-central": {"method": "central"},
            "numdiffx-adaptive": {"method": "central", "step": nd.steps.adaptive()}}[provider]


def _numdifftools() -> Any:
    try:
        import numdifftools
    except ImportError:
        raise NotImplementedError("numdifftools is not installed") from None
    return numdifftools


def _numdifftools_jacobian(fun: Callable[[Any], Any], counter: list[int]) -> Callable[..., Any]:
    ndt = _numdifftools()

    def jac(x: Any) -> Any:
        counter[0] += 1
        return ndt.Jacobian(fun)(x)

    return jac


def _timed(solve: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = solve()
    return out, time.perf_counter() - start


# ---------------------------------------------------------------------------------------
def least_squares(p: LeastSquares, provider: str) -> Run:
    from scipy.optimize import least_squares as solve

    fun = Counted(p.fun)
    sparse = p.sparsity is not None
    extra: dict[str, Any] = {"tr_solver": "lsmr"} if sparse else {}
    calls = [0]
    J: Any = None
    if provider == "exact":
        target, jac = fun, p.jac
    elif provider.startswith("scipy"):
        target, jac = fun, SCIPY_FD[provider]
        if sparse:
            extra["jac_sparsity"] = p.sparsity
    elif provider == "numdifftools":
        if sparse:
            raise NotImplementedError("numdifftools has no sparse Jacobians")
        target, jac = fun, _numdifftools_jacobian(fun, calls)
    else:
        J = nd.scipy.Jacobian(fun, sparsity=p.sparsity, **_numdiffx_options(provider))
        target, jac = J.fun, J
    res, seconds = _timed(lambda: solve(target, p.x0, jac=jac, **extra))
    derivatives = res.njev
    if provider == "exact":
        points = 0.0
    elif J is not None:
        points = J.nfev / max(J.ncalls, 1)
    else:  # the solver's res.nfev excludes the finite-difference points ('trf')
        points = (fun.calls - res.nfev) / max(derivatives, 1)
    return Run(p.name, provider, points, derivatives, fun.calls, res.njev, res.x,
               2 * res.cost, seconds, bool(res.success))


# ---------------------------------------------------------------------------------------
def ode(o: Ode, provider: str, method: str = "BDF") -> Run:
    from scipy.integrate import solve_ivp

    fun = Counted(o.fun)
    options: dict[str, Any] = {"method": method, "rtol": o.rtol, "atol": o.atol}
    J: Any = None
    calls = [0]
    if provider == "exact":
        target, options["jac"] = fun, o.jac
    elif provider == "scipy-2point":
        target = fun
        if o.sparsity is not None:
            options["jac_sparsity"] = o.sparsity
    elif provider == "numdifftools":
        if o.sparsity is not None:
            raise NotImplementedError("numdifftools has no sparse Jacobians")
        _numdifftools()
        target = fun

        def jac(t: float, y: Any) -> Any:
            return _numdifftools_jacobian(lambda z: fun(t, z), calls)(y)

        options["jac"] = jac
    elif provider == "scipy-3point":
        raise NotImplementedError("solve_ivp's own Jacobian is forward differences only")
    else:
        J = nd.scipy.IvpJacobian(fun, sparsity=o.sparsity, **_numdiffx_options(provider))
        target, options["jac"] = J.fun, J
    sol, seconds = _timed(lambda: solve_ivp(target, o.t_span, o.y0, **options))
    if provider == "exact":
        points = 0.0
    elif J is not None:
        points = J.nfev / max(J.ncalls, 1)
    else:  # solve_ivp's nfev counts the solver's own calls, not the Jacobians' points
        points = (fun.calls - sol.nfev) / max(sol.njev, 1)
    y_end = sol.y[:, -1]
    return Run(f"{o.name}/{method}", provider, points, sol.njev, fun.calls, sol.t.size - 1,
               y_end, float(np.linalg.norm(y_end)), seconds, bool(sol.success))


# ---------------------------------------------------------------------------------------
def minimise(m: Minimisation, provider: str, method: str) -> Run:
    """``method``: "BFGS" (jac from f), "trust-exact" (hess from grad) or "Newton-CG"
    (hessp from grad)."""
    from scipy.optimize import minimize
    from scipy.optimize._numdiff import approx_derivative

    fun, grad = Counted(m.fun), Counted(m.grad)
    options: dict[str, Any] = {"method": method}
    C: Any = None
    if method == "BFGS":  # the gradient from values of f
        target = fun
        counted = fun
        if provider == "exact":
            options["jac"] = grad
            counted = grad
        elif provider.startswith("scipy"):
            options["jac"] = SCIPY_FD[provider]
        elif provider == "numdifftools":
            raise NotImplementedError("numdifftools gradients are not measured here")
        else:
            C = nd.scipy.Gradient(fun, **_numdiffx_options(provider))
            target, options["jac"] = C.fun, C
    else:
        target, counted = fun, grad
        hess_key = "hess" if method == "trust-exact" else "hessp"
        options["jac"] = grad
        if provider == "exact":
            options[hess_key] = m.hess if method == "trust-exact" else m.hessp
        elif provider.startswith("scipy"):
            if method == "trust-exact":  # refuses hess='2-point': SciPy's FD of the gradient
                fd = SCIPY_FD[provider]

                def hess(x: Any) -> Any:
                    return approx_derivative(grad, x, method=fd, f0=grad(x) if fd == "2-point"
                                             else None)

                options["hess"] = hess
            else:
                options["hess"] = SCIPY_FD[provider]
        elif provider == "numdifftools":
            if method != "trust-exact":
                raise NotImplementedError("numdifftools has no Hessian-vector products")
            ndt = _numdifftools()
            options["hess"] = lambda x: ndt.Jacobian(grad)(x)
        else:
            cls = nd.scipy.Hessian if method == "trust-exact" else nd.scipy.HessianProduct
            C = cls(grad=grad, **_numdiffx_options(provider))
            options["jac"], options[hess_key] = C.grad, C
    res, seconds = _timed(lambda: minimize(target, m.x0, **options))
    if method == "BFGS":
        derivatives = res.njev
    else:
        derivatives = int(getattr(res, "nhev", 0) or 0)
    if provider == "exact":
        points = 0.0
    elif C is not None:
        points = C.nfev / max(C.ncalls, 1)
    elif provider.startswith("scipy") and method != "trust-exact":
        points = _scipy_points(m, method, SCIPY_FD[provider])
    else:  # trust-exact's FD Hessian and numdifftools: the gradient calls beyond the solver's
        points = (grad.calls - res.njev) / max(derivatives, 1)
    return Run(f"{m.name}/{method}", provider, points, derivatives, counted.calls, res.nit,
               res.x, float(res.fun), seconds, bool(res.success))


def _scipy_points(m: Minimisation, method: str, fd: str) -> float:
    """Evaluations of ONE of SciPy's own derivatives inside minimize, measured at x0:
    its result counts the finite-difference calls together with the solver's own, so
    they are counted apart here, configured as ScalarFunction configures them (f(x) or
    g(x) given; Newton-CG's hess='k-point' is a LinearOperator: one product)."""
    from scipy.optimize._numdiff import approx_derivative

    if method == "BFGS":
        fun = Counted(m.fun)
        approx_derivative(fun, m.x0, method=fd, f0=m.fun(m.x0))
        return float(fun.calls)
    grad = Counted(m.grad)
    op = approx_derivative(grad, m.x0, method=fd, f0=m.grad(m.x0), as_linear_operator=True)
    op.dot(np.ones_like(m.x0))
    return float(grad.calls)
