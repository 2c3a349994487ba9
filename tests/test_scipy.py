"""numdiffx.scipy: the callables plug into SciPy's solvers and change no outcome.

Each solve is compared with the same solve on exact derivatives (the problems of
``asv_bench/benchmarks/_solver_problems.py``, whose hand-written derivatives are checked
here too). SciPy's solvers are numpy-only, so these tests are numpy-only as well.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numdiffx as nd

pytest.importorskip("scipy")
from scipy.integrate import solve_ivp  # noqa: E402
from scipy.optimize import least_squares, minimize, root  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))
try:
    from benchmarks import _solver_problems as problems  # noqa: E402
finally:
    sys.path.pop(0)

MGH = {p.name: p for p in problems.LEAST_SQUARES}


class Counted:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else np.asarray(a)


def test_the_benchmark_problems_exact_derivatives_are_right():
    rng = np.random.default_rng(1)
    for p in problems.LEAST_SQUARES + problems.sparse_least_squares(40):
        x = p.x0 + 0.1 * rng.standard_normal(p.n)
        ref = nd.jacobian(p.fun, x, step=nd.steps.adaptive())
        np.testing.assert_allclose(_dense(p.jac(x)), ref, rtol=1e-7, atol=1e-9, err_msg=p.name)
    for o in problems.odes():
        y = o.y0 + 0.01
        ref = nd.jacobian(lambda z, o=o: o.fun(0.0, z), y)
        np.testing.assert_allclose(_dense(o.jac(0.0, y)), ref, atol=1e-6 * np.abs(ref).max(),
                                   err_msg=o.name)
    for m in problems.minimisations():
        x = m.x0 + 0.1
        np.testing.assert_allclose(m.grad(x), nd.gradient(m.fun, x), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(m.hess(x), nd.jacobian(m.grad, x), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(m.hessp(x, x), m.hess(x) @ x, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# least_squares and root
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rosenbrock", "bard", "kowalik_osborne", "osborne_2",
                                  "watson"])
@pytest.mark.parametrize("method", ["forward", "central"])
def test_least_squares_reaches_the_exact_derivatives_answer(name, method):
    p = MGH[name]
    exact = least_squares(p.fun, p.x0, jac=p.jac)
    J = nd.scipy.Jacobian(p.fun, method=method)
    res = least_squares(J.fun, p.x0, jac=J)
    assert res.success and res.njev == exact.njev
    np.testing.assert_allclose(res.cost, exact.cost, rtol=1e-6)
    np.testing.assert_allclose(res.x, exact.x, rtol=1e-5, atol=1e-8)
    if p.f_star:  # and the published optimum
        np.testing.assert_allclose(2 * res.cost, p.f_star, rtol=1e-5)
    # f(x) always came from the solver: n points per Jacobian forward, 2n central
    assert J.nfev == (1 if method == "forward" else 2) * p.n * J.ncalls
    assert J.ncalls == res.njev and J.memo_hits >= J.ncalls


def test_least_squares_passes_args_and_kwargs_through():
    def fun(x, a, *, b):
        return np.array([a * (x[1] - x[0] ** 2), b - x[0]])

    J = nd.scipy.Jacobian(fun)
    res = least_squares(J.fun, np.array([-1.2, 1.0]), jac=J, args=(10.0,), kwargs={"b": 1.0})
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-8)
    assert J.memo_hits >= J.ncalls


@pytest.mark.parametrize("solver", ["hybr", "lm"])
def test_root_converges_as_with_the_exact_jacobian(solver):
    p = MGH["helical_valley"]  # a square system
    exact = root(p.fun, p.x0, jac=p.jac, method=solver)
    J = nd.scipy.Jacobian(p.fun)
    res = root(J.fun, p.x0, jac=J, method=solver)
    assert res.success and exact.success
    np.testing.assert_allclose(res.x, exact.x, atol=1e-6)
    assert J.nfev == p.n * J.ncalls  # n points: f(x) came from the solver each time


def test_a_jacobian_reusing_f0_is_identical_and_one_evaluation_cheaper():
    p = MGH["osborne_1"]
    counted = Counted(p.fun)
    J = nd.scipy.Jacobian(counted)
    x = p.x0 + 0.01
    J.fun(x)  # the solver evaluates x
    before = counted.calls
    reused = J(x)
    assert counted.calls - before == p.n  # n points; f(x) not again
    before = counted.calls
    fresh = nd.jacobian(counted, x, method="forward")
    assert counted.calls - before == p.n + 1
    np.testing.assert_array_equal(reused, fresh)
    # a point the solver has not evaluated: f(x) is evaluated once, and handed to the
    # solver from memory when it asks
    y = x + 0.01
    before = counted.calls
    J(y)
    J.fun(y)
    assert counted.calls - before == p.n + 1


def test_the_memory_never_serves_a_stale_or_mutated_value():
    counted = Counted(lambda x, a: a * x)
    J = nd.scipy.Jacobian(counted)
    x = np.array([1.0, 2.0])
    out = J.fun(x, 2.0)
    out[:] = -1.0  # the solver writes into what it got
    np.testing.assert_array_equal(J.fun(x, 2.0), [2.0, 4.0])
    assert counted.calls == 1
    np.testing.assert_array_equal(J.fun(x, 3.0), [3.0, 6.0])  # other args: evaluated
    x[0] = 5.0  # the solver moves x in place
    np.testing.assert_array_equal(J.fun(x, 3.0), [15.0, 6.0])
    assert counted.calls == 3
    off = nd.scipy.Jacobian(counted, memo_size=0)
    off.fun(x, 3.0)
    off.fun(x, 3.0)
    assert counted.calls == 5 and off.memo_hits == 0


def test_sparse_pattern_and_colouring_are_computed_once(monkeypatch):
    from numdiffx._core import sparse

    colourings = []
    original = sparse.colour_columns
    monkeypatch.setattr(sparse, "colour_columns",
                        lambda *a: colourings.append(1) or original(*a))
    p = problems.sparse_least_squares(200)[2]  # Broyden tridiagonal
    J = nd.scipy.Jacobian(p.fun, sparsity=p.sparsity)
    res = least_squares(J.fun, p.x0, jac=J, tr_solver="lsmr")
    exact = least_squares(p.fun, p.x0, jac=p.jac, tr_solver="lsmr")
    assert res.success and res.njev == exact.njev >= 3
    np.testing.assert_allclose(res.x, exact.x, atol=1e-10)
    assert len(colourings) == 1 and J.ncalls == res.njev
    assert J.pattern is not None and J.pattern.n_colours == 3
    assert J.nfev == 3 * J.ncalls  # one point per colour, forward
    # SciPy's own colouring of the same pattern needs more groups
    from scipy.optimize._numdiff import group_columns

    assert group_columns(p.sparsity).max() + 1 > J.pattern.n_colours


def test_a_detected_pattern_is_detected_once(monkeypatch):
    import numdiffx.scipy as nds

    detections = []
    original = nds.detect_sparsity
    monkeypatch.setattr(nds, "detect_sparsity",
                        lambda *a, **k: detections.append(1) or original(*a, **k))
    p = problems.sparse_least_squares(60)[1]  # discrete boundary value
    J = nd.scipy.Jacobian(p.fun, sparsity="detect")
    res = least_squares(J.fun, p.x0, jac=J, tr_solver="lsmr")
    assert res.success and len(detections) == 1 and J.ncalls == res.njev >= 2
    np.testing.assert_array_equal(J.pattern.to_dense(), p.sparsity.toarray())
    # detection: f(x) and two probes per element, one point per call; then one point
    # per colour
    assert J.nfev == 2 * p.n + 1 + 3 * J.ncalls


# ---------------------------------------------------------------------------------------
# solve_ivp
# ---------------------------------------------------------------------------------------
ODES = {o.name: o for o in problems.odes()}


@pytest.mark.parametrize("method", ["BDF", "Radau"])
def test_stiff_solve_matches_the_exact_jacobian(method):
    o = ODES["robertson"]
    opts = {"method": method, "rtol": o.rtol, "atol": o.atol}
    exact = solve_ivp(o.fun, o.t_span, o.y0, jac=o.jac, **opts)
    J = nd.scipy.IvpJacobian(o.fun)
    sol = solve_ivp(J.fun, o.t_span, o.y0, jac=J, **opts)
    assert sol.success and abs(sol.t.size - exact.t.size) <= 2
    scale = o.atol + o.rtol * np.abs(exact.y[:, -1])
    assert np.all(np.abs(sol.y[:, -1] - exact.y[:, -1]) <= scale)
    assert J.ncalls == sol.njev and J.nfev == 3 * J.ncalls  # n = 3 points, f(y) reused
    assert J.memo_hits >= J.ncalls  # BDF asks at its Newton start: remembered too


@pytest.mark.parametrize("sparsity", ["given", "detect"])
def test_brusselator_with_a_pattern(sparsity):
    o = ODES["brusselator_200"]
    opts = {"method": "BDF", "rtol": o.rtol, "atol": o.atol}
    exact = solve_ivp(o.fun, o.t_span, o.y0, jac=o.jac, **opts)
    J = nd.scipy.IvpJacobian(o.fun, sparsity=o.sparsity if sparsity == "given" else "detect")
    sol = solve_ivp(J.fun, o.t_span, o.y0, jac=J, **opts)
    assert sol.success and sol.t.size == exact.t.size
    np.testing.assert_allclose(sol.y[:, -1], exact.y[:, -1], rtol=10 * o.rtol, atol=o.atol)
    assert J.pattern.n_colours == 4 and hasattr(J(0.0, o.y0), "tocsr")


def test_a_vectorized_rhs_is_called_once_per_jacobian():
    mu = 1000.0
    calls = []

    def vdp(t, y):  # y (2,) or (2, k)
        calls.append(np.shape(y))
        return np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])

    J = nd.scipy.IvpJacobian(vdp, vectorized=True)
    y = np.array([2.0, -0.5])
    f0 = J.fun(0.0, y[:, None])  # as solve_ivp calls a vectorized fun: (n, 1)
    calls.clear()
    jac = J(0.0, y)
    assert len(calls) >= 1 and all(len(c) == 2 for c in calls)  # batched columns
    exact = [[0.0, 1.0], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] ** 2)]]
    np.testing.assert_allclose(jac, exact, rtol=1e-6)
    assert f0.shape == (2, 1)
    sol = solve_ivp(J.fun, (0.0, 300.0), y, method="Radau", jac=J, vectorized=True)
    assert sol.success


def test_solve_ivp_args_reach_fun_and_jac():
    J = nd.scipy.IvpJacobian(lambda t, y, k: -k * y)
    sol = solve_ivp(J.fun, (0.0, 1.0), np.array([1.0, 2.0]), method="BDF", jac=J, args=(3.0,),
                    rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sol.y[:, -1], np.exp(-3.0) * np.array([1.0, 2.0]), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# minimize
# ---------------------------------------------------------------------------------------
MINS = {m.name: m for m in problems.minimisations()}


@pytest.mark.parametrize("name", ["rosenbrock_10", "logistic_20"])
def test_trust_exact_with_a_hessian_from_the_gradient(name):
    m = MINS[name]
    exact = minimize(m.fun, m.x0, jac=m.grad, hess=m.hess, method="trust-exact")
    H = nd.scipy.Hessian(grad=m.grad)
    res = minimize(m.fun, m.x0, jac=H.grad, hess=H, method="trust-exact")
    assert res.success and res.nit == exact.nit
    np.testing.assert_allclose(res.x, exact.x, atol=1e-6)
    assert H.nfev == m.x0.size * H.ncalls  # n gradient calls: g(x) reused


@pytest.mark.parametrize("name", ["rosenbrock_10", "logistic_20"])
def test_newton_cg_with_products_from_the_gradient(name):
    m = MINS[name]
    exact = minimize(m.fun, m.x0, jac=m.grad, hessp=m.hessp, method="Newton-CG")
    Hp = nd.scipy.HessianProduct(grad=m.grad)
    res = minimize(m.fun, m.x0, jac=Hp.grad, hessp=Hp, method="Newton-CG")
    assert res.success and abs(res.nit - exact.nit) <= 1
    # Newton-CG stops on its step size (xtol): exact products land ~1e-4 from the optimum
    np.testing.assert_allclose(res.x, exact.x, atol=2e-3)
    assert Hp.nfev == Hp.ncalls == res.nhev  # ONE gradient call per product


def test_bfgs_with_a_gradient_from_values():
    m = MINS["logistic_20"]
    exact = minimize(m.fun, m.x0, jac=m.grad, method="BFGS")
    G = nd.scipy.Gradient(m.fun)
    res = minimize(G.fun, m.x0, jac=G, method="BFGS", args=())
    assert res.success and res.nit == exact.nit
    np.testing.assert_allclose(res.x, exact.x, atol=1e-7)
    assert G.nfev == 2 * m.x0.size * G.ncalls  # central, f(x) from the solver


def test_hessian_and_products_from_values_alone():
    m = MINS["rosenbrock_10"]
    x0 = np.full(4, 0.5)
    H, Hp = nd.scipy.Hessian(m.fun), nd.scipy.HessianProduct(m.fun)
    exact = minimize(m.fun, x0, jac=m.grad, hess=m.hess, method="trust-exact")
    res = minimize(H.fun, x0, jac=m.grad, hess=H, method="trust-exact")
    np.testing.assert_allclose(res.x, exact.x, atol=1e-6)
    assert H.nfev == (2 * 4 ** 2 + 2 * 4) * H.ncalls  # f(x) reused: 2 n**2 + 2 n
    res = minimize(Hp.fun, x0, jac=m.grad, hessp=Hp, method="trust-ncg")
    np.testing.assert_allclose(res.x, exact.x, atol=1e-5)


def test_minimize_args_reach_every_callable():
    def f(x, c):
        return float(np.sum((x - c) ** 2 * (1 + x ** 2)))

    def g(x, c):
        return 2 * (x - c) * (1 + x ** 2) + 2 * x * (x - c) ** 2

    c = np.array([1.0, -2.0])
    G, Hp = nd.scipy.Gradient(f), nd.scipy.HessianProduct(grad=g)
    res = minimize(G.fun, np.zeros(2), jac=G, args=(c,), method="BFGS")
    np.testing.assert_allclose(res.x, c, atol=1e-5)
    res = minimize(f, np.zeros(2), jac=Hp.grad, hessp=Hp, args=(c,), method="Newton-CG")
    np.testing.assert_allclose(res.x, c, atol=1e-4)


# ---------------------------------------------------------------------------------------
# construction, imports
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, exc, match", [
    (lambda: nd.scipy.Jacobian(3), TypeError, "fun must be callable"),
    (lambda: nd.scipy.Jacobian(np.sin, method="sideways"), ValueError, "sideways"),
    (lambda: nd.scipy.Jacobian(np.sin, step=-1.0), ValueError, "step=-1.0"),
    (lambda: nd.scipy.Jacobian(np.sin, memo_size=-1), ValueError, "memo_size"),
    (lambda: nd.scipy.Jacobian(np.sin, sparsity="auto"), ValueError, "sparsity='auto'"),
    (lambda: nd.scipy.Jacobian(np.sin, sparsity=3.0), TypeError, "sparsity must be"),
    (lambda: nd.scipy.IvpJacobian(np.sin, vectorized="yes"), TypeError, "vectorized"),
    (lambda: nd.scipy.Jacobian(np.sin, evaluation="parallel"), ValueError, "evaluation="),
    (lambda: nd.scipy.Gradient(np.sin, method=nd.central(deriv=2)), ValueError,
     "first-derivative method"),
    (lambda: nd.scipy.HessianProduct(grad=np.cos, step=nd.steps.bound()), ValueError,
     "not by hvp with grad="),
    (lambda: nd.scipy.Gradient(None), TypeError, "fun must be callable"),
    (lambda: nd.scipy.Hessian(), TypeError, "pass fun .* or grad="),
    (lambda: nd.scipy.HessianProduct(grad="g"), TypeError, "grad must be callable"),
])
def test_bad_arguments_fail_at_construction_naming_the_parameter(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_importing_numdiffx_or_numdiffx_scipy_does_not_import_scipy():
    code = ("import sys, numdiffx as nd, numdiffx.scipy; nd.scipy.Jacobian; "
            "assert 'scipy' not in sys.modules, 'scipy imported'")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root,
                   env={"PYTHONPATH": str(root), "PATH": ""})


def test_without_scipy_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(ImportError, match=r"pip install 'numdiffx\[scipy\]'"):
        nd.scipy.Jacobian(np.sin)


@pytest.mark.slow
def test_the_comparison_script_runs_and_meets_the_point_targets():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "asv_bench/compare/solvers_vs_scipy.py", "--quick"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    assert "on every problem: met" in out, out  # never more points than SciPy
    assert "fewer points than SciPy with the same pattern: met" in out, out
    assert "per-call overhead" in out and "cProfile" in out
