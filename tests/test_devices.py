"""Every operation and check on a NON-default device: the stand-ins for a GPU.

array-api-strict's ``device1`` refuses to combine arrays of two devices and to copy an
array to numpy implicitly, as cupy and torch on CUDA do; jax's second host device
(``XLA_FLAGS`` in conftest) keeps committed arrays there and refuses jitted work that
mixes devices. Each result is checked for namespace, dtype, shape and DEVICE before its
values, so an array numdiffx makes without ``device=`` fails here without a GPU.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import numdiffx as nd
from tests.conftest import ArrayBackend, assert_array_like

X = np.array([0.5, 1.0, 2.0])


def _f(xp: Any) -> Callable[[Any], Any]:
    """(..., 3) -> (..., 3): ``sin(x) * flip(x)``, batched for free."""
    return lambda x: xp.sin(x) * xp.flip(x, axis=-1)


def _s(xp: Any) -> Callable[[Any], Any]:
    """(..., 3) -> (...): the sum of ``_f``, a scalar per point."""
    return lambda x: xp.sum(xp.sin(x) * xp.flip(x, axis=-1), axis=-1)


def _jac(x: np.ndarray) -> np.ndarray:
    n = x.size
    j = np.diag(np.cos(x) * x[::-1])
    j[np.arange(n), n - 1 - np.arange(n)] += np.sin(x)
    return j


def _grad(x: np.ndarray) -> np.ndarray:
    return np.cos(x) * x[::-1] + np.sin(x[::-1])


def _g(xp: Any) -> Callable[[Any], Any]:
    """The gradient of ``_s``, in closed form (for ``hessian``/``hvp`` with ``grad=``)."""
    return lambda x: xp.cos(x) * xp.flip(x, axis=-1) + xp.sin(xp.flip(x, axis=-1))


def _hess(x: np.ndarray) -> np.ndarray:
    n = x.size
    h = np.diag(-np.sin(x) * x[::-1])
    h[np.arange(n), n - 1 - np.arange(n)] += np.cos(x) + np.cos(x[::-1])
    return h


def _on_device(a: Any, xb: ArrayBackend, dtype: Any = None) -> None:
    """Namespace, dtype, device of an array, a DiffResult's fields, or a sparse matrix."""
    if isinstance(a, nd.DiffResult):
        _on_device(a.value, xb, dtype)
        for field in (a.error, a.step, a.status):
            if field is not None:
                _on_device(field, xb)
        return
    if isinstance(a, nd.SparseJacobian):
        for part in (a.rows, a.cols, a.data):
            _on_device(part, xb)
        return
    if type(a).__name__ == "BCOO":  # jax's sparse matrix
        assert a.data.devices() == {xb.device}, (a.data.devices(), xb.device)
        return
    if type(a).__module__.startswith("cupyx"):  # cupy's sparse matrix: its data array
        _on_device(a.data, xb)
        return
    assert_array_like(a, xb, a.dtype if dtype is None else dtype, tuple(a.shape))


def _dense(a: Any, xb: ArrayBackend) -> np.ndarray:
    if isinstance(a, nd.DiffResult):
        a = a.value
    if isinstance(a, nd.SparseJacobian) or type(a).__name__ == "BCOO" or type(
            a).__module__.startswith("cupyx"):
        a = a.todense()
    elif getattr(a, "is_sparse", False):  # torch's sparse COO tensor
        a = a.to_dense()
    return xb.to_numpy(a)


def _mask(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    m = np.zeros((X.size, X.size), dtype=bool)
    m[rows, cols] = True
    return m


# name -> (operation(xb, x) -> result, exact(x) -> expected, rtol)
def _operations() -> dict[str, tuple[Callable[[ArrayBackend, Any], Any],
                                     Callable[[np.ndarray], np.ndarray], float]]:
    def jac(**kw: Any) -> Callable[[ArrayBackend, Any], Any]:
        return lambda xb, x: nd.jacobian(_f(xb.xp), x, **kw)

    def pool(xb: ArrayBackend, x: Any) -> Any:
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            return nd.jacobian(_f(xb.xp), x, executor=ex)

    def tangent(xb: ArrayBackend, x: Any) -> Any:
        return xb.asarray([1.0, -2.0, 0.5])

    v = np.array([1.0, -2.0, 0.5])
    rows = np.concatenate([np.arange(X.size), np.arange(X.size)])
    cols = np.concatenate([np.arange(X.size), X.size - 1 - np.arange(X.size)])
    pattern = _mask(rows, cols)
    a = 1e-6  # the one-step rules' accuracy in float64, with room
    return {
        "jacobian": (jac(), _jac, a),
        "jacobian batched": (jac(evaluation="batched"), _jac, a),
        "jacobian loop": (jac(evaluation="loop"), _jac, a),
        "jacobian full_output": (jac(full_output=True), _jac, a),
        "jacobian batched full_output": (jac(evaluation="batched", full_output=True), _jac, a),
        "jacobian forward": (jac(method="forward"), _jac, 1e-4),
        "jacobian central order 4": (jac(method=nd.central(order=4)), _jac, a),
        "jacobian chunked": (jac(chunk_size=2, full_output=True), _jac, a),
        "jacobian f0": (lambda xb, x: nd.jacobian(_f(xb.xp), x, f0=_f(xb.xp)(x)), _jac, a),
        "jacobian adaptive": (jac(step=nd.steps.adaptive(), full_output=True), _jac, 1e-9),
        "jacobian adaptive bounds": (jac(step=nd.steps.adaptive(bounds=(0.4, 2.0)),
                                         full_output=True), _jac, 1e-8),
        "jacobian bound": (jac(step=nd.steps.bound(), full_output=True), _jac, a),
        "jacobian fitted": (jac(step=nd.steps.fitted(), full_output=True), _jac, a),
        "jacobian executor": (pool, _jac, a),
        "jacobian sparsity": (jac(sparsity=pattern, full_output=True), _jac, a),
        "jacobian sparsity detect": (jac(sparsity="detect"), _jac, a),
        "derivative": (lambda xb, x: nd.derivative(xb.xp.sin, x), np.cos, a),
        "derivative full_output": (lambda xb, x: nd.derivative(xb.xp.sin, x, full_output=True),
                                   np.cos, a),
        "derivative second": (lambda xb, x: nd.derivative(xb.xp.sin, x, method=nd.central(
            deriv=2)), lambda x: -np.sin(x), 1e-4),
        "derivative adaptive": (lambda xb, x: nd.derivative(
            xb.xp.sin, x, step=nd.steps.adaptive(), full_output=True), np.cos, 1e-9),
        "gradient": (lambda xb, x: nd.gradient(_s(xb.xp), x), _grad, a),
        "gradient adaptive": (lambda xb, x: nd.gradient(
            _s(xb.xp), x, step=nd.steps.adaptive(), full_output=True), _grad, 1e-9),
        "hessian": (lambda xb, x: nd.hessian(_s(xb.xp), x), _hess, 1e-4),
        "hessian full_output": (lambda xb, x: nd.hessian(_s(xb.xp), x, full_output=True),
                                _hess, 1e-4),
        "hessian adaptive": (lambda xb, x: nd.hessian(
            _s(xb.xp), x, step=nd.steps.adaptive(), full_output=True), _hess, 1e-7),
        "hessian from gradient": (lambda xb, x: nd.hessian(None, x, grad=_g(xb.xp),
                                                           full_output=True), _hess, 1e-6),
        "jvp": (lambda xb, x: nd.jvp(_f(xb.xp), x, tangent(xb, x))[1],
                lambda x: _jac(x) @ v, a),
        "jvp adaptive": (lambda xb, x: nd.jvp(_f(xb.xp), x, tangent(xb, x),
                                              step=nd.steps.adaptive())[1],
                         lambda x: _jac(x) @ v, 1e-9),
        "hvp": (lambda xb, x: nd.hvp(_s(xb.xp), x, tangent(xb, x), full_output=True),
                lambda x: _hess(x) @ v, 1e-4),
        "hvp from gradient": (lambda xb, x: nd.hvp(None, x, tangent(xb, x), grad=_g(xb.xp)),
                              lambda x: _hess(x) @ v, 1e-6),
        "gradient complex step": (lambda xb, x: nd.gradient(
            _s(xb.xp), x, method="complex_step", full_output=True), _grad, 1e-9),
        "hessian sparsity": (lambda xb, x: nd.hessian(_s(xb.xp), x, sparsity=pattern,
                                                      full_output=True), _hess, 1e-4),
        "hessian sparsity from gradient": (lambda xb, x: nd.hessian(
            None, x, grad=_g(xb.xp), sparsity=pattern, sparse_output=False), _hess, 1e-6),
    }


OPERATIONS = _operations()
#: jax compiles every primitive of an eager call for each new shape: these cost most of a
#: minute each on a loaded 2-core machine (CI runs them with -m slow)
_JAX_SLOW = {"hessian adaptive", "jacobian adaptive", "jacobian adaptive bounds"}
#: on jax's second device the default run keeps one case per operation (each compiles for
#: its shapes: ~7 s apiece on 2 busy cores); the rest run with -m slow, as CI does
_JAX_QUICK = {"jacobian", "jacobian full_output", "derivative", "gradient", "hessian",
              "hessian from gradient", "jvp", "hvp", "jacobian sparsity", "hessian sparsity"}


def _cases() -> list[Any]:
    from tests.conftest import _DEVICE_FACTORIES

    return [pytest.param(b, name, id=f"{b}-{name}",
                         marks=[pytest.mark.slow] if b.startswith("jax") and (
                             name in _JAX_SLOW or name not in _JAX_QUICK) else [])
            for b in _DEVICE_FACTORIES for name in OPERATIONS]


@pytest.mark.parametrize(("backend", "name"), _cases())
def test_operation_on_a_non_default_device(backend, name):
    from tests.conftest import _DEVICE_FACTORIES

    device_xb = _DEVICE_FACTORIES[backend]()
    op, exact, rtol = OPERATIONS[name]
    x = device_xb.asarray(X)
    result = op(device_xb, x)
    _on_device(result, device_xb, device_xb.xp.float64)
    expected = exact(X)
    got = _dense(result, device_xb)
    assert got.shape == expected.shape
    err = np.max(np.abs(got - expected))
    assert err <= rtol * max(1.0, np.max(np.abs(expected))), (name, err)
    if isinstance(result, nd.DiffResult) and result.error is not None:
        assert np.all(device_xb.to_numpy(result.status) == int(nd.Status.SUCCESS)), name


def test_float32_stays_float32_on_the_device(device_xb):
    x = device_xb.asarray(X, "float32")
    r = nd.jacobian(_f(device_xb.xp), x, full_output=True)
    _on_device(r, device_xb, device_xb.xp.float32)
    assert np.max(np.abs(device_xb.to_numpy(r.value) - _jac(X))) < 1e-3


def test_domain_edge_and_one_sided_retry_on_the_device(device_xb):
    """sqrt at 0: NaN on one side (the one-sided retry), statuses built on the device."""
    xp = device_xb.xp
    x = device_xb.asarray([0.0, 1.0, 4.0])
    with np.errstate(invalid="ignore"):  # (array-api-strict's numpy warns on sqrt(-h))
        for step in (None, nd.steps.adaptive()):
            r = nd.derivative(xp.sqrt, x, step=step, full_output=True)
            _on_device(r, device_xb)
            assert device_xb.to_numpy(r.status)[0] != int(nd.Status.SUCCESS)  # none at 0
            np.testing.assert_allclose(device_xb.to_numpy(r.value)[1:], [0.5, 0.25],
                                       rtol=1e-6)
        r = nd.jacobian(lambda z: xp.sqrt(z + 1.0) * 2.0 - xp.sqrt(z), x, full_output=True)
    _on_device(r, device_xb)
    assert device_xb.to_numpy(r.status)[0, 0] != int(nd.Status.SUCCESS)


def test_empty_input_on_the_device(device_xb):
    x = device_xb.asarray(np.zeros(0))
    for r in (nd.jacobian(_f(device_xb.xp), x, full_output=True),
              nd.jacobian(_f(device_xb.xp), x, step=nd.steps.adaptive(), full_output=True)):
        _on_device(r, device_xb)
        assert tuple(r.value.shape) == (0, 0)


def test_several_arguments_on_the_device(device_xb):
    xp = device_xb.xp
    x, y = device_xb.asarray(X), device_xb.asarray([2.0, -1.0, 0.5])
    jx, jy = nd.jacobian(lambda a, b: xp.sin(a) * b, x, y, argnums=(0, 1))
    _on_device(jx, device_xb)
    _on_device(jy, device_xb)
    np.testing.assert_allclose(device_xb.to_numpy(jy), np.diag(np.sin(X)), rtol=1e-7)


def test_f_returning_a_python_scalar_or_numpy_lands_on_the_device(device_xb):
    """A loop f that returns a Python float (or a host numpy array) per point: its
    values are put on x's device before they meet numdiffx's arrays."""
    def f(z):
        return float(device_xb.to_numpy(z).sum() ** 2)

    x = device_xb.asarray(X)
    g = nd.gradient(f, x, evaluation="loop")
    _on_device(g, device_xb)
    np.testing.assert_allclose(device_xb.to_numpy(g), 2 * X.sum() * np.ones(3), rtol=1e-6)


def test_sparse_product_and_dense_stay_on_the_device(device_xb):
    x = device_xb.asarray(X)
    J = nd.jacobian(_f(device_xb.xp), x, sparsity="detect")
    if isinstance(J, nd.SparseJacobian):
        _on_device(J.toarray(), device_xb)
        _on_device(J @ device_xb.asarray([1.0, 1.0, 1.0]), device_xb)
    np.testing.assert_allclose(_dense(J, device_xb), _jac(X), rtol=1e-6, atol=1e-12)


def test_host_copy_helper_crosses_devices(device_xb):
    """``to_host`` (the one device-to-host copy) works where ``np.asarray`` refuses."""
    from numdiffx.backends import to_host

    x = device_xb.asarray(X)
    np.testing.assert_array_equal(to_host(x), X)


def test_gradcheck_with_a_claimed_jacobian_on_the_device(device_xb):
    """A hand-written Jacobian (reference=callable) checked on the device; and a wrong
    one caught."""
    xp = device_xb.xp

    def claimed(x):
        return xp.asarray(_jac(device_xb.to_numpy(x)), device=device_xb.device)

    def wrong(x):
        return claimed(x) * 1.01

    x = device_xb.asarray(X)
    for fast_mode in (False, True):
        assert nd.gradcheck(_f(xp), (x,), reference=claimed, fast_mode=fast_mode)
        with pytest.raises(nd.GradcheckError, match="1.01 times"):
            nd.gradcheck(_f(xp), (x,), reference=wrong, fast_mode=fast_mode)


# -- jax's autodiff checks on its second device ------------------------------------------

@pytest.fixture
def jax_device1():
    from tests.conftest import _DEVICE_FACTORIES

    return _DEVICE_FACTORIES["jax_device1"]()


@pytest.mark.parametrize("fast_mode", [False, True])
def test_jax_gradcheck_and_gradgradcheck_on_device1(jax_device1, fast_mode):
    jnp = jax_device1.xp
    x = jax_device1.asarray(X)
    assert nd.gradcheck(_f(jnp), (x,), fast_mode=fast_mode, check_forward_ad=True)
    assert nd.gradgradcheck(_f(jnp), (x,), fast_mode=fast_mode)


@pytest.mark.parametrize("order", [1, 2])
def test_jax_check_grads_on_device1(jax_device1, order):
    """jax.test_util.check_grads' drop-in: its random cotangents are made on the device
    of f's outputs (they were made on the default device: "incompatible devices")."""
    jnp = jax_device1.xp
    x = jax_device1.asarray(X)
    nd.check_grads(_f(jnp), (x,), order=order)
    nd.check_grads(_s(jnp), (x,), order=order, modes=("rev",))
    with pytest.raises(AssertionError):
        import jax

        @jax.custom_vjp
        def bad(z):
            return jnp.sin(z)

        bad.defvjp(lambda z: (jnp.sin(z), z), lambda z, g: (g * jnp.cos(z) * 1.1,))
        nd.check_grads(bad, (x,), order=1, modes=("rev",))


@pytest.mark.parametrize("step", [None, pytest.param(nd.steps.adaptive(), marks=pytest.mark.slow)],
                         ids=["auto", "adaptive"])
def test_jax_results_under_jit_stay_on_device1(jax_device1, step):
    """Traced, numdiffx's arrays have no device (jax places them): the jitted result
    lands on x's device. (Adaptive: a 5-minute compile on a loaded 2-core machine.)"""
    import jax

    jnp = jax_device1.xp
    x = jax_device1.asarray(X)
    r = jax.jit(lambda z: nd.jacobian(_f(jnp), z, step=step, full_output=True))(x)
    _on_device(r, jax_device1)
    np.testing.assert_allclose(np.asarray(r.value), _jac(X), rtol=1e-6, atol=1e-12)


def test_jax_complex_step_on_device1(jax_device1):
    jnp = jax_device1.xp
    x = jax_device1.asarray(X)
    r = nd.jacobian(_f(jnp), x, method="complex_step", full_output=True)
    _on_device(r, jax_device1)
    np.testing.assert_allclose(np.asarray(r.value), _jac(X), rtol=1e-12, atol=1e-14)
    h = nd.hessian(_s(jnp), x, method="complex_step")
    _on_device(h, jax_device1)
    np.testing.assert_allclose(np.asarray(h), _hess(X), rtol=1e-6, atol=1e-8)


def test_new_boundaries_on_the_device(device_xb, tmp_path):
    """Trees, the stationary-point rule, a diagonal sparse Hessian from g and a checkpoint
    record, each on the non-default device."""
    xp, x = device_xb.xp, device_xb.asarray(X)
    tree = nd.gradient(lambda p: xp.sum(p["a"] ** 2) + xp.sum(p["b"]), {"a": x, "b": x},
                       full_output=True)
    _on_device(tree.value["a"], device_xb, xp.float64)
    np.testing.assert_allclose(device_xb.to_numpy(tree.value["a"]), 2 * X, rtol=1e-8)
    zero = device_xb.asarray(np.zeros(3))
    r = nd.gradient(lambda v: 0.5 * xp.sum(v ** 2, axis=-1) + 100.0, zero, full_output=True)
    _on_device(r, device_xb, xp.float64)
    assert np.all(device_xb.to_numpy(r.status) == int(nd.Status.SUCCESS))
    diag = nd.hessian(None, x, grad=lambda v: 2 * v, sparsity=np.eye(3, dtype=bool),
                      sparse_output=False)
    _on_device(diag, device_xb, xp.float64)
    np.testing.assert_allclose(_dense(diag, device_xb), 2 * np.eye(3), atol=1e-6)
    path = tmp_path / "record.sqlite"
    first = nd.jacobian(_f(xp), x, evaluation="loop", checkpoint=path)
    again = nd.jacobian(_f(xp), x, evaluation="loop", checkpoint=path)
    _on_device(again, device_xb, xp.float64)
    np.testing.assert_array_equal(device_xb.to_numpy(first), device_xb.to_numpy(again))
