"""Finite differences as an autodiff rule: nd.torch.fd_function and nd.jax.fd_function."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import numdiffx as nd

A = np.array([[0.9, -0.4, 0.3, 0.1], [0.2, 0.7, -0.6, 0.5], [-0.3, 0.1, 0.8, -0.9]])
X = np.array([0.3, -0.2, 0.7, 0.1])


def box(a):
    """A numpy black box R^4 -> R^3 (no autodiff can see through it)."""
    return np.tanh(A @ a) + 0.1 * a[0] * a[1]


def exact_jacobian(a):
    return (1 - np.tanh(A @ a) ** 2)[:, None] * A + 0.1 * np.outer(np.ones(3), [a[1], a[0], 0, 0])


def test_interop_without_its_library_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    monkeypatch.delitem(nd.__dict__, "jax", raising=False)
    with pytest.raises(ImportError, match=r"nd.jax needs jax.*pip install 'numdiffx\[jax\]'"):
        nd.jax  # noqa: B018


def test_import_numdiffx_imports_neither_torch_nor_jax_until_asked():
    pytest.importorskip("jax")
    code = ("import sys, numdiffx as nd; print('torch' in sys.modules, 'jax' in sys.modules); "
            "nd.jax.fd_function; print('torch' in sys.modules, 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=pathlib.Path(__file__).parents[1]).stdout.split()
    assert out == ["False", "False", "False", "True"]


def test_unknown_attribute_still_raises():
    with pytest.raises(AttributeError, match="no attribute 'tensorflow'"):
        nd.tensorflow  # noqa: B018


# -- torch ------------------------------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_torch_gradcheck_backward_and_forward_ad(torch):
    fn = nd.torch.fd_function(box)
    x = torch.tensor(X, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5,
                                    check_forward_ad=True)
    assert nd.gradcheck(fn, (x.detach(),))


def test_torch_rules_match_the_exact_jacobian(torch):
    fn = nd.torch.fd_function(box)
    x, v = torch.tensor(X), torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    J = exact_jacobian(X)
    np.testing.assert_allclose(torch.func.jacrev(fn)(x).numpy(), J, rtol=1e-8, atol=1e-9)
    y, jv = torch.func.jvp(fn, (x,), (v,))
    np.testing.assert_array_equal(y.numpy(), box(X))
    np.testing.assert_allclose(jv.numpy(), J @ v.numpy(), rtol=1e-7, atol=1e-8)
    xs = torch.tensor(np.stack([X, 2 * X, -X]))
    np.testing.assert_array_equal(torch.func.vmap(fn)(xs).numpy(),
                                  np.stack([box(X), box(2 * X), box(-X)]))
    with pytest.raises(NotImplementedError, match="vmap over a derivative of an fd_function"):
        torch.func.vmap(torch.func.grad(lambda a: fn(a).sum()))(xs)


def test_torch_options_reach_the_jacobian(torch):
    pattern = np.ones((3, 4), dtype=bool)
    for options in ({"sparsity": pattern}, {"method": nd.central(order=4)},
                    {"executor": None, "chunk_size": 2}):
        fn = nd.torch.fd_function(box, **options)
        x = torch.tensor(X, requires_grad=True)
        fn(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), exact_jacobian(X).sum(axis=0), rtol=1e-8)


def test_torch_keeps_dtype_and_refuses_bad_input(torch):
    fn = nd.torch.fd_function(box)
    x = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    y = fn(x)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert x.grad.dtype == torch.float32
    with pytest.raises(TypeError, match="takes a torch.Tensor"):
        fn(X)
    with pytest.raises(TypeError, match="floating tensors"):
        fn(torch.arange(4))
    with pytest.raises(TypeError, match="f must be callable"):
        nd.torch.fd_function(3)


def test_torch_cuda_tensors_go_through_the_host(torch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    fn = nd.torch.fd_function(box)
    x = torch.tensor(X, device="cuda", requires_grad=True)
    fn(x).sum().backward()
    assert x.grad.device.type == "cuda"
    np.testing.assert_allclose(x.grad.cpu().numpy(), exact_jacobian(X).sum(axis=0), rtol=1e-8)


def test_training_through_a_black_box_matches_exact_gradients(torch):
    path = pathlib.Path(__file__).parents[1] / "examples" / "train_through_black_box.py"
    spec = importlib.util.spec_from_file_location("train_through_black_box", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    fd, exact = example.train(exact=False, steps=40), example.train(exact=True, steps=40)
    assert fd[-1] < 0.2 * fd[0]  # it trained
    # central differences at eps**(1/3) steps: gradients agree to ~1e-10 relative
    np.testing.assert_allclose(fd, exact, rtol=1e-7)


# -- jax --------------------------------------------------------------------------------
@pytest.fixture
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def exact_box_jax(a):
    import jax.numpy as jnp

    return jnp.tanh(jnp.asarray(A) @ a) + 0.1 * a[0] * a[1]


def test_jax_grad_jacrev_jacfwd_under_jit(jax):
    fn = nd.jax.fd_function(box)
    x = jax.numpy.asarray(X)
    J = exact_jacobian(X)
    np.testing.assert_array_equal(np.asarray(jax.jit(fn)(x)), box(X))
    for transform in (jax.jacrev, jax.jacfwd):
        np.testing.assert_allclose(np.asarray(jax.jit(transform(fn))(x)), J, rtol=1e-8,
                                   atol=1e-9)
    grad = jax.jit(jax.grad(lambda a: (fn(a) ** 2).sum()))(x)
    np.testing.assert_allclose(np.asarray(grad), 2 * box(X) @ J, rtol=1e-8)


def test_jax_vmap_of_function_and_of_grad(jax):
    fn = nd.jax.fd_function(box)
    xs = np.stack([X, 2 * X, -X, 0.5 * X])
    loss = lambda h: jax.grad(lambda a: h(a).sum())  # noqa: E731
    got = jax.jit(jax.vmap(loss(fn)))(jax.numpy.asarray(xs))
    np.testing.assert_allclose(np.asarray(got), np.stack([exact_jacobian(r).sum(0) for r in xs]),
                               rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(np.asarray(got), np.asarray(jax.vmap(loss(exact_box_jax))(xs)),
                               rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(jax.vmap(fn)(xs)), np.stack([box(r) for r in xs]))


def test_jax_directional_rule_is_forward_only(jax):
    fn = nd.jax.fd_function(box, jvp_rule="directional")
    x, v = jax.numpy.asarray(X), jax.numpy.asarray([1.0, -2.0, 0.5, 3.0])
    _, jv = jax.jit(lambda a, t: jax.jvp(fn, (a,), (t,)))(x, v)
    np.testing.assert_allclose(np.asarray(jv), exact_jacobian(X) @ np.asarray(v), rtol=1e-7)
    with pytest.raises(ValueError, match="Pure callbacks do not support transpose"):
        jax.grad(lambda a: fn(a).sum())(x)


def test_jax_result_shape_and_options(jax):
    struct = jax.ShapeDtypeStruct((3,), np.float64)
    fn = nd.jax.fd_function(box, result_shape=struct, sparsity=np.ones((3, 4), bool),
                            method=nd.central(order=4))
    J = jax.jit(jax.jacrev(fn))(jax.numpy.asarray(X))
    np.testing.assert_allclose(np.asarray(J), exact_jacobian(X), rtol=1e-9, atol=1e-10)
    with pytest.raises(ValueError, match="jvp_rule must be one of"):
        nd.jax.fd_function(box, jvp_rule="reverse")
    with pytest.raises(TypeError, match="result_shape must be a jax.ShapeDtypeStruct"):
        nd.jax.fd_function(box, result_shape=(3,))


# -- the docs pages run ------------------------------------------------------------------
@pytest.mark.parametrize("page", ["interop.md",
                                  pytest.param("distributed.md", marks=pytest.mark.slow)])
def test_docs_code_blocks_run(page, torch, jax):
    pytest.importorskip("distributed")
    text = (pathlib.Path(__file__).parents[1] / "docs" / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)  # noqa: S102 - our own docs
