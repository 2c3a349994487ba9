"""Backend adapters: the report's network and cases against torch/jax autodiff, jit, no graph."""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd
from numdiffx.studies import make_mlp, network_for
from tests.tolerances import rtol_for

torch = pytest.importorskip("torch")
ACTIVATIONS = ["tanh", "relu"]


def _rel_err(actual, expected) -> float:
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return float(np.max(np.abs(a - e)) / np.max(np.abs(e)))


def torch_net(activation: str, dtype: str = "float64"):
    return network_for(make_mlp(activation), "torch", dtype).f


def jax_net(activation: str, dtype: str = "float64"):
    pytest.importorskip("jax")
    return network_for(make_mlp(activation), "jax", dtype).f


def _x(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape)


# -- torch -------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("evaluation", ["auto", "batched"])
def test_torch_network_matches_jacrev(activation, evaluation):
    net = torch_net(activation)
    x = torch.tensor(_x((10, 5)))
    jac = nd.jacobian(net, x, evaluation=evaluation)
    ref = torch.func.jacrev(net)(x)
    assert jac.dtype == torch.float64 and jac.shape == ref.shape == (10, 5, 10, 5)
    assert _rel_err(jac, ref) <= 1e-9


def test_torch_network_float32_stays_float32():
    net = torch_net("tanh", "float32")
    x = torch.tensor(_x((4, 5)), dtype=torch.float32)
    jac = nd.jacobian(net, x)
    assert jac.dtype == torch.float32 and jac.device == x.device
    assert _rel_err(jac, torch.func.jacrev(net)(x)) <= rtol_for(nd.central(), "float32")


def test_torch_x_dot_y_100x100_chunked():
    x, y = torch.tensor(_x((100, 100), 2)), torch.tensor(_x((100, 100), 3))

    def f(x, y):  # row-wise dot product; any leading batch axes
        return (x * y).sum(-1)

    calls = []

    def counted(x, y):
        calls.append(x.shape[0])
        return f(x, y)

    jx = nd.jacobian(counted, x, y, evaluation="batched", memory_budget=2**25)
    rx = torch.func.jacrev(f)(x, y)
    assert jx.shape == (100, 100, 100) and _rel_err(jx, rx) <= 1e-9
    assert len(calls) > 4 + 1 and max(calls) < 2 * 100 * 100  # really chunked


def test_torch_batched_over_dim1_minus_method():
    x, y = torch.tensor(_x((64, 1, 64), 4)), torch.tensor(_x((64, 1, 64), 5))

    def f(x, y):
        return (torch.sin(x) * y).sum(-1, keepdim=True)

    seen = []

    def batched(x, y):
        seen.append(tuple(x.shape))
        return f(x, y)

    jac = nd.jacobian(batched, x, y, evaluation="batched", batch_axis=1, method="minus")
    ref = torch.func.jacrev(f)(x, y)
    assert jac.shape == ref.shape == (64, 1, 1, 64, 1, 64)
    assert all(s[0] == 64 and s[2] == 64 for s in seen) and max(s[1] for s in seen) > 1
    assert _rel_err(jac, ref) <= rtol_for(nd.backward(), "float64")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_torch_network_batched_over_dim1(activation):
    net = torch_net(activation)
    x = torch.tensor(_x((20, 5), 6))  # reaches f as (20, m, 5): a new axis 1
    jac = nd.jacobian(net, x, evaluation="batched", batch_axis=1)
    assert _rel_err(jac, torch.func.jacrev(net)(x)) <= 1e-9
    # (8, 1, 16, 2) batched over its size-1 axis 1; the wrapper lifts 2 features to 5
    lift = torch.tensor(_x((5, 2), 7))

    def wrapped(a):
        return net(a @ lift.T)

    x2 = torch.tensor(_x((8, 1, 16, 2), 8))
    jac2 = nd.jacobian(wrapped, x2, evaluation="batched", batch_axis=1)
    ref2 = torch.func.jacrev(wrapped)(x2)
    assert jac2.shape == ref2.shape == (8, 1, 16, 5, 8, 1, 16, 2)
    assert _rel_err(jac2, ref2) <= 1e-9


def test_torch_requires_grad_input_builds_no_graph():
    net = torch_net("tanh")
    x = torch.tensor(_x((3, 5)), requires_grad=True)
    grad_enabled = []

    def f(x):
        grad_enabled.append(torch.is_grad_enabled())
        return net(x)

    for evaluation in ("auto", "batched", "loop"):
        jac = nd.jacobian(f, x, evaluation=evaluation)
        assert jac.grad_fn is None and not jac.requires_grad
        assert _rel_err(jac, torch.func.jacrev(net)(x.detach())) <= 1e-9
    assert grad_enabled and not any(grad_enabled)
    assert x.requires_grad and x.grad is None
    np.testing.assert_array_equal(x.detach().numpy(), _x((3, 5)))  # not mutated


def test_torch_auto_falls_back_to_loop_when_vmap_cannot_trace():
    def f(x):  # .item() cannot be vmapped
        return x * float(x.sum().item())

    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    res = nd.jacobian(f, x, full_output=True)
    loop = nd.jacobian(f, x, evaluation="loop")
    torch.testing.assert_close(res.value, loop, rtol=0, atol=0)
    assert res.nfev == 1 + 2 * 2
    with pytest.raises(RuntimeError, match=r"item\(\)"):
        nd.jacobian(f, x, evaluation="vmap")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("evaluation", ["vmap", "loop"])
def test_torch_half_precision_jacobian_in_its_own_dtype(dtype, evaluation):
    """f runs in the 16-bit dtype (never silently in float32), the Jacobian comes back in
    it, and the error estimate covers the true error; second differences are refused."""
    seen = set()

    def f(z):
        seen.add(z.dtype)
        return torch.sin(z) * z.flip(-1)

    x = torch.tensor([0.5, 1.0, 2.0], dtype=dtype)
    res = nd.jacobian(f, x, evaluation=evaluation, full_output=True)
    assert seen == {dtype} and res.value.dtype == dtype and res.error.dtype == dtype
    xd = x.double()
    true = torch.autograd.functional.jacobian(lambda z: torch.sin(z) * z.flip(-1), xd)
    err = (res.value.double() - true).abs()
    assert float(err.max()) < 0.05
    assert bool((res.error.double() >= err).all())
    with pytest.raises(TypeError, match="16-bit float.*float32"):
        nd.hessian(lambda z: torch.sin(z).sum(), x)


def test_batch_axis_is_validated():
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="batch_axis=1 only applies to evaluation='batched'"):
        nd.jacobian(torch.sin, x, batch_axis=1)
    with pytest.raises(ValueError, match="batch_axis must be a non-negative int"):
        nd.jacobian(torch.sin, x, evaluation="batched", batch_axis=-1)
    with pytest.raises(ValueError, match="batch_axis=3 is out of range"):
        nd.jacobian(torch.sin, x, evaluation="batched", batch_axis=3)


# -- jax ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jax_network_matches_jacrev_eager_and_under_jit(activation):
    jax = pytest.importorskip("jax")
    net = jax_net(activation)
    x = jax.numpy.asarray(_x((10, 5)))
    ref = jax.jacrev(net)(x)
    eager = nd.jacobian(net, x)
    jitted = jax.jit(lambda x: nd.jacobian(net, x))(x)
    for jac in (eager, jitted):
        assert jac.dtype == jax.numpy.float64 and jac.shape == (10, 5, 10, 5)
        assert _rel_err(jac, ref) <= 1e-9
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-12, atol=1e-12)


def test_jax_jit_hessian_jvp_and_float32():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def f(x):
        return jnp.sum(jnp.sin(x) * x**2)

    x = jnp.linspace(0.1, 1.0, 4)
    h = jax.jit(lambda x: nd.hessian(f, x))(x)
    assert _rel_err(h, jax.hessian(f)(x)) <= rtol_for(nd.central(), "float64", deriv=2)
    v = jnp.ones(4)
    _, t = jax.jit(lambda x, v: nd.jvp(jnp.sin, x, v))(x, v)
    assert _rel_err(t, jnp.cos(x)) <= 1e-9
    x32 = jnp.asarray(x, dtype=jnp.float32)
    j32 = jax.jit(lambda x: nd.jacobian(jnp.sin, x))(x32)
    assert j32.dtype == jnp.float32
    assert _rel_err(j32, jnp.diag(jnp.cos(x32))) <= rtol_for(nd.central(), "float32")


def test_jax_result_stays_on_a_non_default_device():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    devices = jax.devices("cpu")
    if len(devices) < 2:
        pytest.skip("only one jax CPU device (XLA_FLAGS was set after jax was imported)")
    x = jax.device_put(jax.numpy.linspace(0.1, 1.0, 3), devices[1])
    for result in (nd.jacobian(jax.numpy.sin, x), nd.hessian(lambda x: jax.numpy.sum(x**3), x),
                   nd.jvp(jax.numpy.sin, x, x)[1]):
        assert result.devices() == {devices[1]}


@pytest.mark.parametrize("a", [np.arange(6.0).reshape(2, 3), np.array(3.0), np.zeros((0, 4)),
                               np.arange(10.0)[::2], np.arange(4, dtype=np.float32)],
                         ids=["matrix", "0-d", "empty", "strided", "float32"])
def test_numpy_repeated_is_broadcast_to(a):
    """The numpy adapter builds a batched f's other arguments as views directly: the same
    values, shape and dtype as ``np.broadcast_to``, read-only as it, ``a`` unmoved, and f
    sees them with the batch's length."""
    from numdiffx.backends import adapter

    view = adapter("numpy").repeated(a, 3, np)
    expected = np.broadcast_to(a, (3, *a.shape))
    assert view.shape == expected.shape and view.dtype == expected.dtype
    np.testing.assert_array_equal(view, expected)
    with pytest.raises(ValueError):
        view[...] = 1.0
    seen = []

    def f(x, w):
        seen.append(w.shape)
        return x * w[..., :1]

    x, w = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    J = nd.jacobian(f, x, w, evaluation="batched")
    np.testing.assert_allclose(J, 3.0 * np.eye(2), rtol=1e-9)
    assert seen == [(1, 2), (5, 2)]  # f(x) alone, then 2n central points and x
