"""numdiffx as the derivative provider of SciPy's solvers (issue 21), as asv benchmarks.

``time_solve`` is one whole solve; ``track_points`` the finite-difference evaluations
per Jacobian / Hessian / product (f(x) reused is not counted), ``track_evaluations``
every call of the user's function (or gradient) in the solve, ``track_iterations`` the
solver's own count (Jacobians for least squares, steps for ODEs, iterations for
minimize). ``JacobianCall`` times ONE derivative at x0 with f(x) known: the per-call
overhead. The ratios of one run side by side: ``python asv_bench/compare/solvers_vs_scipy.py``.
The problems: ``_solver_problems.py``; how each provider is plugged in: ``_solver_runs.py``.
"""

from __future__ import annotations

from typing import Any

from . import _solver_problems as problems
from . import _solver_runs as runs

_COMPARED = ["exact", "scipy-2point", "numdiffx-forward", "scipy-3point", "numdiffx-central"]


def _require_scipy() -> None:
    try:
        import scipy  # noqa: F401
    except ImportError:
        raise NotImplementedError("scipy is not installed") from None


def _least_squares(name: str) -> problems.LeastSquares:
    found = [p for p in problems.LEAST_SQUARES if p.name == name]
    return found[0] if found else next(
        p for p in problems.sparse_least_squares(1000) if p.name == name)


class _Solve:
    run: runs.Run

    def track_points(self, *params: Any) -> float:
        return self.run.points

    track_points.unit = "evaluations"  # type: ignore[attr-defined]

    def track_evaluations(self, *params: Any) -> int:
        return self.run.evaluations

    track_evaluations.unit = "evaluations"  # type: ignore[attr-defined]

    def track_iterations(self, *params: Any) -> int:
        return self.run.iterations

    track_iterations.unit = "iterations"  # type: ignore[attr-defined]


class LeastSquaresSolve(_Solve):
    """least_squares (trf) on Moré-Garbow-Hillstrom problems; the last two are sparse
    (n = 1000, a pattern given to SciPy and numdiffx alike, tr_solver='lsmr')."""

    params = (["rosenbrock", "osborne_2", "meyer", "broyden_tridiagonal_1000",
               "broyden_banded_1000"], _COMPARED)
    param_names = ["problem", "provider"]

    def setup(self, problem: str, provider: str) -> None:
        _require_scipy()
        self.problem = _least_squares(problem)
        self.run = runs.least_squares(self.problem, provider)

    def time_solve(self, problem: str, provider: str) -> None:
        runs.least_squares(self.problem, provider)


class OdeSolve(_Solve):
    """solve_ivp with BDF / Radau on stiff problems (Brusselator: with its pattern)."""

    params = (["robertson", "van_der_pol_1000", "brusselator_200"], ["BDF", "Radau"],
              ["exact", "scipy-2point", "numdiffx-forward"])
    param_names = ["problem", "method", "provider"]

    def setup(self, problem: str, method: str, provider: str) -> None:
        _require_scipy()
        self.ode = next(o for o in problems.odes() if o.name == problem)
        self.run = runs.ode(self.ode, provider, method)

    def time_solve(self, problem: str, method: str, provider: str) -> None:
        runs.ode(self.ode, provider, method)


class MinimiseSolve(_Solve):
    """minimize: trust-exact with ``hess``, Newton-CG with ``hessp`` (both from the
    gradient), BFGS with ``jac`` (from values of f)."""

    params = (["rosenbrock_10", "logistic_20"], ["trust-exact", "Newton-CG", "BFGS"],
              _COMPARED)
    param_names = ["problem", "method", "provider"]

    def setup(self, problem: str, method: str, provider: str) -> None:
        _require_scipy()
        self.min = next(m for m in problems.minimisations() if m.name == problem)
        self.run = runs.minimise(self.min, provider, method)

    def time_solve(self, problem: str, method: str, provider: str) -> None:
        runs.minimise(self.min, provider, method)


class JacobianCall:
    """One Jacobian at x0 with f(x0) known, as inside a solver: SciPy's
    ``approx_derivative(f0=...)`` vs a ``numdiffx.scipy.Jacobian`` whose ``.fun`` has
    just evaluated x0. Same points for the same order: the difference is overhead."""

    params = (["rosenbrock", "osborne_2", "broyden_tridiagonal_1000"],
              ["scipy-2point", "numdiffx-forward", "scipy-3point", "numdiffx-central"])
    param_names = ["problem", "provider"]

    def setup(self, problem: str, provider: str) -> None:
        _require_scipy()
        import numdiffx as nd

        p = _least_squares(problem)
        x0 = p.x0
        self.points = [0]
        counted = runs.Counted(p.fun)
        if provider.startswith("scipy"):
            from scipy.optimize._numdiff import approx_derivative, group_columns

            f0 = p.fun(x0)
            sparsity = None if p.sparsity is None else (p.sparsity,
                                                        group_columns(p.sparsity))
            method = runs.SCIPY_FD[provider]

            def call() -> Any:
                return approx_derivative(counted, x0, method=method, f0=f0, sparsity=sparsity)
        else:
            J = nd.scipy.Jacobian(counted, method=provider.split("-")[1],
                                  sparsity=p.sparsity)
            J.fun(x0)  # the solver's evaluation at x0, remembered
            J(x0)  # the first call normalises the pattern (once); time the later ones

            def call() -> Any:
                return J(x0)
        self.call = call
        before = counted.calls
        call()
        self.points[0] = counted.calls - before

    def time_jacobian(self, problem: str, provider: str) -> None:
        self.call()

    def track_points(self, problem: str, provider: str) -> int:
        return self.points[0]

    track_points.unit = "evaluations"  # type: ignore[attr-defined]
