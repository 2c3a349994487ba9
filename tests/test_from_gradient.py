"""Hessians and Hessian-vector products from a known gradient, and f0/grad0 reuse.

``nd.hessian(f, x, grad=g)`` is the symmetrised Jacobian of g; ``nd.hvp(..., grad=g)``
one directional difference of g. Both on every backend, with ``grad0`` (the solver's
g(x)) saving exactly one call and changing nothing; ``f0`` likewise for every
operation, in the forms SciPy's solvers hold f(x) (1-d residuals, a Python float).
"""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import device

import numdiffx as nd
from tests.conftest import assert_array_like
from tests.reference import _rosen, rosen_grad, rosen_hess
from tests.tolerances import rtol_for

X0 = np.array([-1.2, 1.0, 0.8, 1.1])
V0 = np.array([0.5, -1.0, 2.0, 0.25])


def _rosen_grad(xp, x):
    """The gradient of ``_rosen``, written against the namespace (vmap- and jit-safe)."""
    a, b = x[:-1], x[1:]
    t = b - a ** 2
    zero = xp.zeros((1,), dtype=x.dtype, device=device(x))
    return xp.concat([-400.0 * a * t - 2.0 * (1.0 - a), zero]) + xp.concat([zero, 200.0 * t])


def _close(actual, expected, rtol, scale):
    err = float(np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected)))
    bound = rtol * max(scale, float(np.max(np.abs(expected))))
    assert err <= bound, f"max error {err:.3e} > {bound:.3e}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", [None, "central"])
def test_hessian_from_gradient_is_the_symmetrised_jacobian_of_g(xb, dtype, method):
    x = xb.asarray(X0, dtype)
    g = lambda x: _rosen_grad(xb.xp, x)  # noqa: E731
    H = nd.hessian(None, x, grad=g, method=method)
    assert_array_like(H, xb, getattr(xb.xp, dtype), (4, 4))
    h = xb.to_numpy(H)
    np.testing.assert_array_equal(h, h.T)
    order = nd.forward() if method is None else nd.central()  # forward is the default
    _close(h, rosen_hess(X0), rtol_for(order, dtype), 1000.0)
    # the same as differencing g by hand, then averaging with the transpose
    J = xb.to_numpy(nd.jacobian(g, x, method=method or "forward"))
    np.testing.assert_allclose(h, (J + J.T) / 2, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", [None, "central"])
def test_hvp_from_gradient_is_one_directional_difference_of_g(xb, dtype, method):
    x, v = xb.asarray(X0, dtype), xb.asarray(V0, dtype)
    g = lambda x: _rosen_grad(xb.xp, x)  # noqa: E731
    hv = nd.hvp(None, x, v, grad=g, method=method)
    assert_array_like(hv, xb, getattr(xb.xp, dtype), (4,))
    order = nd.forward() if method is None else nd.central()
    _close(xb.to_numpy(hv), rosen_hess(X0) @ V0, rtol_for(order, dtype), 1000.0)
    _, jv = nd.jvp(g, x, v, method=method or "forward")  # the same difference
    np.testing.assert_array_equal(xb.to_numpy(hv), xb.to_numpy(jv))


@pytest.mark.parametrize("method, products", [(None, 1), ("central", 2)])
def test_grad0_saves_exactly_one_gradient_call_and_changes_nothing(xb, method, products):
    x, v = xb.asarray(X0), xb.asarray(V0)
    g = lambda x: _rosen_grad(xb.xp, x)  # noqa: E731
    g0 = g(x)
    for op in (lambda **kw: nd.hvp(None, x, v, grad=g, method=method, full_output=True, **kw),
               lambda **kw: nd.hessian(None, x, grad=g, method=method, full_output=True, **kw)):
        fresh, known = op(), op(grad0=g0)
        assert fresh.nfev == known.nfev + 1
        np.testing.assert_array_equal(xb.to_numpy(fresh.value), xb.to_numpy(known.value))
    if xb.name in ("numpy", "array_api_strict"):  # one call per point: the count is exact
        assert nd.hvp(None, x, v, grad=g, grad0=g0, method=method, full_output=True
                      ).nfev == products
        assert nd.hessian(None, x, grad=g, grad0=g0, method=method, full_output=True
                          ).nfev == products * 4


def test_hessian_from_gradient_costs_n_gradient_calls_not_2n2_values():
    f = lambda x: _rosen(np, x)  # noqa: E731
    g = lambda x: _rosen_grad(np, x)  # noqa: E731
    np.testing.assert_allclose(g(X0), rosen_grad(X0), rtol=1e-15)  # the test's own g
    from_f = nd.hessian(f, X0, full_output=True)
    from_g = nd.hessian(f, X0, grad=g, grad0=g(X0), full_output=True)
    # f: the five-point diagonal (4 n + 1) and the mixed entries (2 n (n - 1))
    assert (from_f.nfev, from_g.nfev) == (2 * 4 ** 2 + 2 * 4 + 1, 4)
    _close(from_g.value, from_f.value, 1e-6, 1000.0)  # both O(sqrt(eps))


def test_error_estimate_of_a_symmetrised_hessian_is_honest():
    g = lambda x: _rosen_grad(np, x)  # noqa: E731
    r = nd.hessian(None, X0, grad=g, method="central", step=nd.steps.adaptive(),
                   full_output=True)
    true = np.abs(r.value - rosen_hess(X0))
    assert np.all(true <= r.error) and r.status_counts() == {"SUCCESS": 16}
    assert np.all(r.error < 1e-6 * 1000.0)  # and not uselessly large
    jac = nd.jacobian(g, X0, method="central", step=nd.steps.adaptive())
    assert np.all(r.error >= np.abs(jac - jac.T) / 2)  # at least the asymmetry


def test_a_failed_entry_takes_its_mirror():
    A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 4.0]])
    x0 = np.array([0.3, 0.7, -0.2])

    def g(x):  # NaN as soon as x[1] moves up: column 1 of the Jacobian fails
        return A @ x if x[1] <= x0[1] else np.full(3, np.nan)

    r = nd.hessian(None, x0, grad=g, full_output=True)
    codes = np.asarray(r.status)
    assert codes[1, 1] == nd.Status.NON_FINITE and np.isnan(r.value[1, 1])
    for i in (0, 2):  # H[i, 1] = H[1, i], read from column i
        assert codes[i, 1] == codes[1, i] == nd.Status.SUCCESS
        assert r.value[i, 1] == r.value[1, i]
        np.testing.assert_allclose(r.value[i, 1], A[i, 1], rtol=1e-6)
    np.testing.assert_array_equal(nd.hessian(None, x0, grad=g), r.value)  # value alone too


@pytest.mark.parametrize("call, exc, match", [
    (lambda g: nd.hessian(None, X0, grad=3), TypeError, "grad must be callable"),
    (lambda g: nd.hessian(None, X0), TypeError, "f must be callable"),
    (lambda g: nd.hessian(np.sum, X0, grad0=g(X0)), ValueError, "grad0= .* needs grad="),
    (lambda g: nd.hvp(np.sum, X0, V0, grad0=g(X0)), ValueError, "grad0= .* needs grad="),
    (lambda g: nd.hessian(None, X0, grad=g, f0=1.0), ValueError, "pass the known gradient"),
    (lambda g: nd.hvp(None, X0, V0, grad=g, f0=1.0), ValueError, "as grad0= instead"),
    (lambda g: nd.hessian(None, X0, grad=g, grad0=np.zeros(3)), ValueError,
     r"grad0 must be the gradient at x, of args\[0\]'s shape \(4,\)"),
    (lambda g: nd.hvp(None, X0, V0, grad=g, grad0="x"), TypeError, "grad0 must be an array"),
    (lambda g: nd.hessian(None, X0, grad=lambda x: x[:2]), ValueError,
     r"grad must return the gradient .* shape \(4,\); it returned shape \(2,\)"),
    (lambda g: nd.hvp(None, (X0, X0), (V0, V0), grad=g), TypeError,
     "with grad=, primals must be one array"),
    (lambda g: nd.hessian(None, X0, grad=g, method=nd.central(deriv=2)), ValueError,
     "first-derivative method"),
])
def test_bad_gradient_arguments_name_the_parameter(call, exc, match):
    with pytest.raises(exc, match=match):
        call(lambda x: _rosen_grad(np, x))


def test_grad0_from_another_library_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="grad0 must come from the same array library"):
        nd.hessian(None, X0, grad=lambda x: _rosen_grad(np, x), grad0=torch.zeros(4))


def test_inputs_are_not_mutated():
    x, v = X0.copy(), V0.copy()
    g0 = _rosen_grad(np, x)
    g0_copy = g0.copy()
    nd.hvp(None, x, v, grad=lambda x: _rosen_grad(np, x), grad0=g0)
    nd.hessian(None, x, grad=lambda x: _rosen_grad(np, x), grad0=g0)
    for a, b in ((x, X0), (v, V0), (g0, g0_copy)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# f0: the f(x) a solver already holds
# ---------------------------------------------------------------------------------------
def _residuals(xp, x):  # least_squares / root: 1-d residuals
    return xp.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0], x[2] * x[0]])


_OPS = {
    "jacobian": lambda f, x, v, **kw: nd.jacobian(f, x, full_output=True, **kw),
    "jacobian-forward": lambda f, x, v, **kw: nd.jacobian(f, x, method="forward",
                                                          full_output=True, **kw),
    "gradient": lambda f, x, v, **kw: nd.gradient(f, x, full_output=True, **kw),
    "hessian": lambda f, x, v, **kw: nd.hessian(f, x, full_output=True, **kw),
    "jvp": lambda f, x, v, **kw: nd.jvp(f, x, v, full_output=True, **kw)[1],
    "hvp": lambda f, x, v, **kw: nd.hvp(f, x, v, full_output=True, **kw),
}


@pytest.mark.parametrize("op", list(_OPS))
def test_f0_saves_exactly_one_evaluation_and_changes_nothing(xb, op):
    x, v = xb.asarray(X0[:3]), xb.asarray(V0[:3])
    if op in ("gradient", "hessian", "hvp"):
        f = lambda x: _rosen(xb.xp, x)  # noqa: E731
    else:
        f = lambda x: _residuals(xb.xp, x)  # noqa: E731
    fresh = _OPS[op](f, x, v)
    known = _OPS[op](f, x, v, f0=f(x))
    assert fresh.nfev == known.nfev + 1
    np.testing.assert_array_equal(xb.to_numpy(fresh.value), xb.to_numpy(known.value))


def test_derivative_f0_saves_one_evaluation():
    x = np.linspace(0.1, 2.0, 5)
    fresh = nd.derivative(np.sin, x, full_output=True)
    known = nd.derivative(np.sin, x, f0=np.sin(x), full_output=True)
    assert fresh.nfev == known.nfev + 1
    np.testing.assert_array_equal(fresh.value, known.value)


def test_f0_in_the_forms_scipy_solvers_hold_it():
    """minimize's fun returns a Python float (or np.float64); solve_ivp's fun a list is
    legal too. Each is taken as f(x) as it is."""
    f = lambda x: float(_rosen(np, x))  # noqa: E731
    for f0 in (f(X0), np.float64(f(X0)), np.asarray(f(X0))):
        g = nd.gradient(f, X0, f0=f0, full_output=True)
        assert g.nfev == 2 * 4
        np.testing.assert_array_equal(g.value, nd.gradient(f, X0))
    res = nd.jacobian(lambda x: list(_residuals(np, x)), X0[:3], f0=list(_residuals(np, X0[:3])),
                      method="forward", full_output=True)
    assert res.nfev == 3
    np.testing.assert_allclose(res.value, nd.jacobian(lambda x: _residuals(np, x), X0[:3],
                                                      method="forward"), rtol=0, atol=0)


def test_a_numerical_gradient_needs_its_noise_named_for_an_honest_estimate():
    """g itself a central difference: its rounding (~1e-11 of its size) divided by the
    outer step is far above the default estimate's eps-level round-off term. With
    ``adaptive(noise=...)`` every entry's estimate covers the true error (away from a
    point where g vanishes, where relative noise has nothing to scale)."""
    def f(x):
        return np.exp(x[0]) * np.sin(x[1]) + x[2] ** 3 + x[0] * x[1] * x[2]

    def exact(x):
        e = np.exp(x[0])
        return np.array([[e * np.sin(x[1]), e * np.cos(x[1]) + x[2], x[1]],
                         [e * np.cos(x[1]) + x[2], -e * np.sin(x[1]), x[0]],
                         [x[1], x[0], 6 * x[2]]])

    for x in (np.array([0.5, 1.2, -0.7]), np.ones(3), np.array([-1.3, 0.2, 2.0])):
        r = nd.hessian(None, x, grad=lambda y: nd.gradient(f, y),
                       step=nd.steps.adaptive(noise=1e-10), full_output=True)
        assert np.all(np.abs(r.value - exact(x)) <= r.error)
        assert np.all(r.status == 0)
        assert np.max(np.abs(r.value - exact(x))) < 1e-6
