"""Derivatives, gradients, Jacobians, Hessians, JVPs and HVPs on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.stencils import resolve_method
from tests.conftest import assert_array_like
from tests.reference import PROBLEMS, Problem, _rosen, rosen_grad, rosen_hess
from tests.tolerances import batch_checks, exact_rtol, rtol_for

METHODS = [nd.central(), nd.forward(), nd.backward(), nd.central(order=4),
           nd.forward(order=2), nd.complex_step()]
DTYPES = ["float64", "float32"]


def _close(actual, expected, rtol, scale=1.0):
    actual = np.asarray(actual, dtype=np.float64)
    err = np.max(np.abs(actual - expected)) if actual.size else 0.0
    bound = rtol * max(scale, float(np.max(np.abs(expected))) if expected.size else 0.0)
    assert err <= bound, f"max error {err:.3e} > {bound:.3e}"


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.name)
@pytest.mark.parametrize("method", METHODS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_jacobians(xb, problem: Problem, method, dtype):
    if problem.name == "sin_large_x" and dtype == "float32":
        pytest.skip("float32 holds x = 1e3 to 6e-5: eps*|x| exceeds the optimal step")
    if xb.name == "array_api_strict" and isinstance(method, nd.ComplexStep):
        pytest.skip("array-api-strict forbids mixing complex and real Python scalars")
    x = xb.asarray(problem.x, dtype)
    jac = nd.jacobian(lambda x: problem.f(xb.xp, x), x, method=method, step=problem.step)
    expected = problem.jac(np.asarray(problem.x))
    assert_array_like(jac, xb, getattr(xb.xp, dtype), expected.shape)
    _close(xb.to_numpy(jac), expected, rtol_for(method, dtype), problem.scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_polynomial_derivatives_are_exact_up_to_rounding(xb, dtype):
    x = xb.asarray([0.5, 1.5, -2.0], dtype)
    d = nd.derivative(lambda x: 3.0 * x**2 - x, x, method=nd.central(), step=0.5)
    _close(xb.to_numpy(d), 6.0 * np.array([0.5, 1.5, -2.0]) - 1.0, exact_rtol(dtype))
    d2 = nd.derivative(lambda x: x**3, x, method=nd.central(deriv=2), step=0.25)
    _close(xb.to_numpy(d2), 6.0 * np.array([0.5, 1.5, -2.0]), exact_rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", [nd.central(), nd.forward(), nd.central(order=4),
                                    nd.complex_step()], ids=repr)
def test_rosenbrock_gradient_and_hessian(xb, dtype, method):
    if xb.name == "array_api_strict" and isinstance(method, nd.ComplexStep):
        pytest.skip("array-api-strict forbids mixing complex and real Python scalars")
    x0 = np.array([-1.2, 1.0, 0.8, 1.1])
    x = xb.asarray(x0, dtype)
    g = nd.gradient(lambda x: _rosen(xb.xp, x), x, method=method)
    assert_array_like(g, xb, getattr(xb.xp, dtype), (4,))
    _close(xb.to_numpy(g), rosen_grad(x0), rtol_for(method, dtype), 200.0)
    h = nd.hessian(lambda x: _rosen(xb.xp, x), x, method=method)
    assert_array_like(h, xb, getattr(xb.xp, dtype), (4, 4))
    h_np = xb.to_numpy(h)
    # complex-step Hessians use a central real direction: order 2 in that direction
    rtol = rtol_for(nd.central() if isinstance(method, nd.ComplexStep) else method, dtype,
                    deriv=2)
    _close(h_np, rosen_hess(x0), rtol, 1000.0)
    np.testing.assert_array_equal(h_np, h_np.T)  # filled symmetrically, exactly


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_equals_looped_field_by_field(xb, dtype):
    x = xb.asarray(np.linspace(-1, 1, 6).reshape(2, 3), dtype)

    def f(x):  # works on unbatched (2, 3) and batched (m, 2, 3) inputs
        return xb.xp.sin(x) * xb.xp.sum(x**2, axis=-1, keepdims=True)

    loop = nd.jacobian(f, x, evaluation="loop", full_output=True)
    batched = nd.jacobian(f, x, evaluation="batched", full_output=True)
    for field in ("value", "step", "status"):
        np.testing.assert_array_equal(xb.to_numpy(getattr(loop, field)),
                                      xb.to_numpy(getattr(batched, field)))
    assert loop.nfev == 1 + 2 * 6
    assert batched.nfev == 1 + 2 * 6 + batch_checks(1)


@pytest.mark.parametrize(("method", "points"), [("central", 2), ("forward", 1), ("backward", 1),
                                                 (nd.forward(order=2), 2),
                                                 (nd.central(order=4), 4)])
def test_f_at_x_is_evaluated_once(xb, method, points):
    x = xb.asarray([0.3, 0.6, 0.9, 1.2])
    res = nd.jacobian(lambda v: xb.xp.exp(v), x, method=method, evaluation="batched",
                      full_output=True)
    # one f(x), the perturbed points, and the checks of the (single) batched call;
    # stencils that use f(x) subtract the sentinel row (same call)
    assert res.nfev == 1 + points * 4 + batch_checks(1)
    hess = nd.hessian(lambda v: xb.xp.sum(xb.xp.exp(v), axis=-1), x, method=method,
                      evaluation="batched", full_output=True)
    stencil = resolve_method(method)
    diag = sum(o != 0 for o in stencil.with_deriv(2).offsets)  # per diagonal entry
    if stencil == nd.central():  # the default measures: the diagonal on +-h and +-2h
        diag = 4
    mixed = len(stencil.offsets) ** 2 - (0 in stencil.offsets)  # per pair, without x itself
    # one f(x); the diagonal run and the mixed run are a batched call each
    assert hess.nfev == 1 + 4 * diag + 6 * mixed + batch_checks(2)


@pytest.mark.parametrize("method", ["forward", "backward"])
def test_batched_forward_differences_keep_structural_zeros_at_roundoff(method):
    # One GEMM per layer. Each chunk carries its own f(x) row, so on most machines the
    # off-block entries are exactly 0; but a BLAS kernel may round a row differently at
    # another batch size or position (seen on AMD EPYC), so the guarantee is the
    # round-off bound eps * |f| / h, never bitwise zeros, and never more.
    from numdiffx.studies import make_mlp

    net = make_mlp("tanh")
    x = np.random.default_rng(0).standard_normal((20, 5))
    r = nd.jacobian(net, x, method=method, evaluation="batched", full_output=True)
    jac = r.value
    off_block = np.ones(jac.shape, dtype=bool)
    off_block[np.arange(20), :, np.arange(20), :] = False
    bound = 8 * np.finfo(float).eps * np.max(np.abs(net(x))) / np.min(r.step)
    assert np.max(np.abs(jac[off_block])) <= bound
    assert np.min(np.abs(jac[~off_block])) > 1e3 * bound  # the blocks are far above it


@pytest.mark.parametrize("dtype", DTYPES)
def test_chunking_gives_the_same_result(xb, dtype):
    x = xb.asarray(np.linspace(0.1, 2, 7), dtype)

    def f(x):
        return xb.xp.exp(x) * xb.xp.sum(x, axis=-1, keepdims=True)

    whole = nd.jacobian(f, x, evaluation="batched")
    for kwargs in ({"chunk_size": 1}, {"chunk_size": 5}, {"memory_budget": 1}):
        part = nd.jacobian(f, x, evaluation="batched", **kwargs)
        np.testing.assert_array_equal(xb.to_numpy(part), xb.to_numpy(whole))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["central", "forward", "complex_step"])
def test_jacobian_times_v_equals_jvp(xb, dtype, method):
    if xb.name == "array_api_strict" and method == "complex_step":
        pytest.skip("array-api-strict forbids mixing complex and real Python scalars")
    x0, v0 = np.array([0.3, -0.7, 1.2]), np.array([1.0, 0.5, -2.0])
    x, v = xb.asarray(x0, dtype), xb.asarray(v0, dtype)

    def f(x):
        return xb.xp.stack([xb.xp.sin(x[0] * x[1]), x[2] ** 2 + x[0]])

    jac = xb.to_numpy(nd.jacobian(f, x, method=method))
    fx, jv = nd.jvp(f, x, v, method=method)
    assert_array_like(jv, xb, getattr(xb.xp, dtype), (2,))
    _close(xb.to_numpy(fx), xb.to_numpy(f(x)), 0.0)
    _close(xb.to_numpy(jv), jac @ v0, 10 * rtol_for(nd.central(), dtype), 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hvp_equals_hessian_times_v(xb, dtype):
    x0, v0 = np.array([-1.2, 1.0, 0.8]), np.array([0.5, -1.0, 2.0])
    x, v = xb.asarray(x0, dtype), xb.asarray(v0, dtype)
    hv = nd.hvp(lambda x: _rosen(xb.xp, x), x, v)
    assert_array_like(hv, xb, getattr(xb.xp, dtype), (3,))
    _close(xb.to_numpy(hv), rosen_hess(x0) @ v0, rtol_for(nd.central(), dtype, deriv=2),
           1000.0)


def test_gradient_equals_jacobian_for_scalar_f(xb):
    x = xb.asarray([0.2, 0.4, 0.9])

    def f(x):
        return xb.xp.sum(xb.xp.exp(x) * x)

    np.testing.assert_array_equal(xb.to_numpy(nd.gradient(f, x)),
                                  xb.to_numpy(nd.jacobian(f, x)))


def _batches(x):
    """1 where evaluation="auto" batches (vmap on torch and jax), else 0 (loop)."""
    from numdiffx.backends import backend_for

    return int(backend_for(x).default_evaluation in ("batched", "vmap"))


def _auto_checks(x, calls):
    """batch_checks of evaluation="auto" on x's backend (0 where it loops)."""
    from numdiffx.backends import backend_for

    return batch_checks(calls, backend_for(x).default_evaluation) * _batches(x)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 1, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_layout_dtype_and_no_mutation(xb, shape, dtype):
    x0 = np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)
    x = xb.asarray(x0, dtype)
    before = xb.to_numpy(x).copy()

    def f(x):
        return xb.xp.stack([xb.xp.sum(x**2), xb.xp.sum(xb.xp.sin(x))])

    res = nd.jacobian(f, x, full_output=True)
    assert_array_like(res.value, xb, getattr(xb.xp, dtype), (2, *shape))
    assert_array_like(res.step, xb, getattr(xb.xp, dtype), shape)
    assert_array_like(res.status, xb, xb.xp.int8, (2, *shape))
    expected = np.stack([2 * x0, np.cos(x0)])
    _close(xb.to_numpy(res.value), expected, rtol_for(nd.central(), dtype))
    np.testing.assert_array_equal(xb.to_numpy(x), before)
    assert res.nfev == 1 + 2 * x0.size + _auto_checks(x, 1)
    hess = nd.hessian(lambda x: xb.xp.sum(x**3), x)
    assert_array_like(hess, xb, getattr(xb.xp, dtype), (*shape, *shape))


@pytest.mark.parametrize("method", ["forward", "central"])
def test_one_point_per_chunk_leaves_x_alone(xb, method):
    # With one perturbed point per chunk the batch of copies of x is a single row; on
    # torch, contiguous() of that row is x itself, and the step was added into x.
    x0 = np.array([0.5, 1.0, 1.5])
    x = xb.asarray(x0)
    for _ in range(2):
        jac = nd.jacobian(xb.xp.sin, x, method=method, chunk_size=1)
        np.testing.assert_array_equal(xb.to_numpy(x), x0)
        _close(xb.to_numpy(jac), np.diag(np.cos(x0)), rtol_for(resolve_method(method),
                                                               "float64"))


def test_several_argnums_give_a_tuple_and_share_f_at_x(xb):
    x, y = xb.asarray([1.0, 2.0]), xb.asarray([3.0, 4.0, 5.0])

    def f(x, y):
        return xb.xp.sum(x) * y

    jx, jy = nd.jacobian(f, x, y, argnums=(0, 1), full_output=True)
    _close(xb.to_numpy(jx.value), np.array([[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]), 1e-8)
    _close(xb.to_numpy(jy.value), 3.0 * np.eye(3), 1e-8)
    # f(x) once, then 2 points per column (and the checks of each argnum's batched call)
    assert jy.nfev == 1 + 2 * 2 + 2 * 3 + 2 * _auto_checks(x, 1)
    only_y = nd.jacobian(f, x, y, argnums=1)
    np.testing.assert_array_equal(xb.to_numpy(only_y), xb.to_numpy(jy.value))


def test_batched_broadcasts_the_other_arguments(xb):
    x, y = xb.asarray(np.ones((4, 2))), xb.asarray([2.0, 3.0])

    def f(x, y):  # batched contract: x (m, 4, 2), y (m, 2)
        return x * y[..., None, :]

    jac = nd.jacobian(f, x, y, evaluation="batched")
    expected = np.einsum("ik,jl->ijkl", np.eye(4), np.diag([2.0, 3.0]))
    _close(xb.to_numpy(jac), expected, 1e-8)


def test_zero_step_guard_is_never_silent(xb):
    x = xb.asarray([1e20, 1.0])
    res = nd.jacobian(lambda x: x * 2.0, x, step=1e-5, full_output=True)
    status = xb.to_numpy(res.status)
    assert status[0, 0] == nd.Status.STEP_TOO_SMALL and status[1, 0] == nd.Status.STEP_TOO_SMALL
    assert np.isnan(xb.to_numpy(res.value)[:, 0]).all()
    # f_0 = 2e20 cannot show a change below its rounding (4e4): d f_0 / d x_1 is resolved
    # only to eps |f_0| / h = 4e9, and the status says so instead of a silent SUCCESS
    assert status[0, 1] == nd.Status.ROUNDOFF and status[1, 1] == nd.Status.SUCCESS
    _close(xb.to_numpy(res.value)[:, 1], np.array([0.0, 2.0]), 1e-8)
    auto = nd.jacobian(lambda x: x * 2.0, x)  # the auto step scales with |x|: no loss
    _close(xb.to_numpy(auto), 2.0 * np.eye(2), 1e-8)


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_elements_not_perturbed_keep_their_bits(xb, method):
    # f reads the sign of x[0] = -0.0. Perturbing x[1] must leave x[0] exactly as it
    # is: x + 0.0 * e turns -0.0 into +0.0, and f's value jumps from -2 to +2.
    xp = xb.xp
    x = xb.asarray([-0.0, 2.0])

    def f(x):
        sign = xp.where(xp.signbit(x[0]), xp.asarray(-1.0, dtype=x.dtype),
                        xp.asarray(1.0, dtype=x.dtype))
        return xp.stack([sign * x[1], x[0] + x[1] ** 2])

    jac = xb.to_numpy(nd.jacobian(f, x, method=method, argnums=0))
    np.testing.assert_allclose(jac[:, 1], [-1.0, 4.0], rtol=1e-6)
    hess = xb.to_numpy(nd.hessian(lambda x: f(x)[0], x))
    assert hess[1, 1] == pytest.approx(0.0, abs=1e-6)


def test_representable_step_is_used(xb):
    x = xb.asarray([0.1, 3.0])
    res = nd.jacobian(lambda x: x, x, step=1e-3, full_output=True)
    x_np, h = xb.to_numpy(x), xb.to_numpy(res.step)
    np.testing.assert_array_equal(h, (x_np + 1e-3) - x_np)
    # linear f: the quotient with the representable step is exact
    np.testing.assert_array_equal(xb.to_numpy(res.value), np.eye(2))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # f's own sqrt
def test_nonfinite_values_get_a_status_not_an_exception(xb):
    x = xb.asarray([1.0, 0.0, 4.0])
    res = nd.derivative(lambda x: xb.xp.sqrt(x), x, full_output=True)
    status = xb.to_numpy(res.status)
    assert list(status) == [nd.Status.SUCCESS, nd.Status.NON_FINITE, nd.Status.SUCCESS]
    value = xb.to_numpy(res.value)
    assert np.isnan(value[1])
    _close(value[[0, 2]], np.array([0.5, 0.25]), 1e-8)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # f's own log
def test_raise_for_status_names_the_elements(xb):
    x = xb.asarray([1.0, -1.0])
    res = nd.jacobian(lambda x: xb.xp.log(x), x, full_output=True)
    assert not bool(xb.xp.all(res.success))  # a boolean mask, as scipy.differentiate
    with pytest.raises(FloatingPointError, match=r"NON_FINITE at \(1, 0\), \(1, 1\)"):
        res.raise_for_status()
    ok = nd.jacobian(lambda x: x, x, full_output=True)
    assert ok.raise_for_status() is ok


def test_empty_input(xb):
    x = xb.asarray(np.zeros((0,)))
    jac = nd.jacobian(lambda x: x * 2.0, x)
    assert tuple(jac.shape) == (0, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_derivative_costs_len_stencil_calls(xb, dtype):
    x = xb.asarray(np.linspace(0.1, 3.0, 50), dtype)
    res = nd.derivative(lambda x: xb.xp.exp(x), x, full_output=True)
    assert res.nfev == 3  # f(x) plus two points, for all 50 elements at once
    assert_array_like(res.value, xb, getattr(xb.xp, dtype), (50,))
    _close(xb.to_numpy(res.value), np.exp(np.linspace(0.1, 3.0, 50)),
           rtol_for(nd.central(), dtype))
