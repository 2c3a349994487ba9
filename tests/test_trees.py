"""Parameter trees in every operation: layouts and values as jax.jacrev & co."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core import treeops

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

Pair = namedtuple("Pair", "scale shift")
LIBS = ("numpy", "torch", "jax")
RTOL = 1e-6  # float64 central differences at the default step: ~1e-10 relative


def _lib_array(lib: str, a: Any) -> Any:
    if not isinstance(a, (np.ndarray, np.generic)):
        return a
    a = np.asarray(a)
    if lib == "torch":
        torch = pytest.importorskip("torch")
        return torch.from_numpy(a.copy())
    if lib == "jax":
        return jnp.asarray(a)
    return a.copy()


def to_lib(lib: str, tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: _lib_array(lib, a), tree)


def host(tree: Any) -> Any:
    def one(a: Any) -> Any:
        return a if a is None else np.asarray(a.detach() if hasattr(a, "detach") else a)

    return jax.tree_util.tree_map(one, tree, is_leaf=lambda a: a is None)


def ops(lib: str) -> Any:
    if lib == "torch":
        import torch

        return torch
    return jnp if lib == "jax" else np


def params() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {"layer1": {"weight": rng.normal(size=(3, 2)), "bias": rng.normal(size=3)},
            "head": (rng.normal(size=3), Pair(np.array(0.7), np.array([0.1, -0.2])))}


def model(p: Any, x: Any, lib: str) -> Any:
    """A small MLP on one input (no batch axis): a dict-of-tuple-of-namedtuple tree."""
    xp = ops(lib)
    h = xp.tanh(p["layer1"]["weight"] @ x + p["layer1"]["bias"])
    scale, shift = p["head"][1]
    y = (p["head"][0] * h).sum() * scale
    return {"y": xp.stack([y + shift[0], y * shift[1]]), "h": h}


X = np.array([0.3, -0.8])


def assert_tree_close(got: Any, want: Any, rtol: float = RTOL, atol: float = 1e-8) -> None:
    got, want = host(got), host(want)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def sorted_tree(tree: Any) -> Any:
    """jax returns dicts with sorted keys: compare structures after the same sort."""
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree),
                                        jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("evaluation", ["auto", "loop"])
def test_jacobian_tree_in_tree_out_equals_jacrev(lib: str, evaluation: str) -> None:
    p, x = to_lib(lib, params()), _lib_array(lib, X)
    J = nd.jacobian(lambda p: model(p, x, lib), p, evaluation=evaluation)
    want = jax.jacrev(lambda p: model(p, jnp.asarray(X), "jax"))(to_lib("jax", params()))
    assert_tree_close(sorted_tree(J), want)
    leaf = J["y"]["layer1"]["weight"]
    assert type(leaf) is type(p["layer1"]["weight"]) and leaf.dtype == p["layer1"][
        "weight"].dtype


def test_jacobian_batched_tree_matches_jacrev() -> None:
    def batched(p: Any) -> Any:  # every float leaf carries a leading batch axis
        h = np.tanh(np.einsum("bij,j->bi", p["layer1"]["weight"], X) + p["layer1"]["bias"])
        scale, shift = p["head"][1]
        y = (p["head"][0] * h).sum(-1) * scale
        return {"y": np.stack([y + shift[:, 0], y * shift[:, 1]], axis=-1), "h": h}

    J = nd.jacobian(batched, params(), evaluation="batched")
    want = jax.jacrev(lambda p: model(p, jnp.asarray(X), "jax"))(to_lib("jax", params()))
    assert_tree_close(sorted_tree(J), want)


@pytest.mark.parametrize("lib", LIBS)
def test_gradient_hessian_jvp_hvp_equal_jax(lib: str) -> None:
    p = to_lib(lib, params())
    x = _lib_array(lib, X)
    jp = to_lib("jax", params())

    def loss(p: Any, lib: str = lib, x: Any = x) -> Any:
        out = model(p, x, lib)
        return (out["y"] ** 2).sum() + (out["h"] ** 3).sum()

    def jloss(p: Any) -> Any:
        return loss(p, "jax", jnp.asarray(X))

    assert_tree_close(sorted_tree(nd.gradient(loss, p)), jax.grad(jloss)(jp))
    assert_tree_close(sorted_tree(nd.hessian(loss, p)), jax.hessian(jloss)(jp), rtol=1e-5,
                      atol=1e-6)
    tangent = jax.tree_util.tree_map(lambda a: np.ones_like(a) * 0.5, params())
    value, jv = nd.jvp(lambda p: model(p, x, lib), (p,), (to_lib(lib, tangent),))
    want_value, want_jv = jax.jvp(lambda p: model(p, jnp.asarray(X), "jax"), (jp,),
                                  (to_lib("jax", tangent),))
    assert_tree_close(sorted_tree(value), want_value, rtol=1e-14)
    assert_tree_close(sorted_tree(jv), want_jv)
    hv = nd.hvp(loss, p, to_lib(lib, tangent))
    _, want_hv = jax.jvp(jax.grad(jloss), (jp,), (to_lib("jax", tangent),))
    assert_tree_close(sorted_tree(hv), want_hv, rtol=1e-5, atol=1e-6)


def test_torch_func_jacrev_layout_on_dicts() -> None:
    torch = pytest.importorskip("torch")
    p = to_lib("torch", {"w": np.arange(6.0).reshape(2, 3) / 5, "b": np.array([0.1, 0.2])})
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)

    def f(p: Any) -> Any:
        return torch.sin(p["w"] @ x + p["b"])

    want = torch.func.jacrev(f)(p)
    got = nd.jacobian(f, p)
    assert list(got) == list(want)
    for k in want:
        assert got[k].shape == want[k].shape and got[k].dtype == want[k].dtype
        torch.testing.assert_close(got[k], want[k], rtol=RTOL, atol=1e-9)


def test_registered_jax_pytree_and_tuple_argnums() -> None:
    from dataclasses import dataclass

    @jax.tree_util.register_dataclass
    @dataclass
    class Linear:
        w: Any
        b: Any

    lin = Linear(jnp.array([[1.0, 2.0], [0.5, -1.0]]), jnp.array([0.1, 0.3]))
    x = jnp.array([0.2, -0.4])

    def f(m: Linear, x: Any) -> Any:
        return jnp.sin(m.w @ x + m.b)

    got = nd.jacobian(f, lin, x, argnums=(0, 1))
    want = jax.jacrev(f, argnums=(0, 1))(lin, x)
    assert isinstance(got[0], Linear)
    assert_tree_close(got, want)


@pytest.mark.parametrize("lib, step", [("numpy", "adaptive"), ("torch", "adaptive"),
                                       ("jax", "bound")])
def test_full_output_and_adaptive_are_trees_named_by_path(lib: str, step: str) -> None:
    p, x = to_lib(lib, params()), _lib_array(lib, X)
    rule = nd.steps.adaptive() if step == "adaptive" else nd.steps.bound()
    r = nd.jacobian(lambda p: model(p, x, lib), p, step=rule, full_output=True)
    assert isinstance(r, nd.DiffResult)
    want = jax.jacrev(lambda p: model(p, jnp.asarray(X), "jax"))(to_lib("jax", params()))
    assert_tree_close(sorted_tree(r.value), want)
    fields = (r.error, r.status, r.step) if step == "adaptive" else (r.error, r.status)
    for field in fields:  # adaptive: steps per value element
        assert jax.tree_util.tree_structure(sorted_tree(host(field))) == (
            jax.tree_util.tree_structure(want))
    assert r.status_counts() == {"SUCCESS": sum(np.size(a) for a in
                                                jax.tree_util.tree_leaves(want))}
    assert r.raise_for_status() is r
    true = jax.tree_util.tree_leaves(want)
    errors = jax.tree_util.tree_leaves(host(sorted_tree(r.error)))
    values = jax.tree_util.tree_leaves(host(sorted_tree(r.value)))
    assert all(np.all(np.abs(v - t) <= e + 1e-15) for v, t, e in zip(values, true, errors))


def test_statuses_name_the_parameter() -> None:
    p = {"layer1.weight": np.array([[1.0, 2.0], [3.0, 0.0]]), "bias": np.array([0.5])}

    def f(p: Any) -> Any:  # sqrt(0 - h) is NaN: only ['layer1.weight'][1, 1] fails
        return np.sqrt(p["layer1.weight"]).sum() + p["bias"][0]

    with np.errstate(invalid="ignore"):
        r = nd.gradient(f, p, full_output=True)
    assert r.status["layer1.weight"][1, 1] == nd.Status.NON_FINITE
    assert r.status_counts() == {"SUCCESS": 4, "NON_FINITE": 1}
    assert r.success["bias"].tolist() == [True]
    assert r.status_names["layer1.weight"][1, 1] == "NON_FINITE"
    with pytest.raises(FloatingPointError, match=r"^1 element\(s\) did not succeed:\n  "
                       r"NON_FINITE at \['layer1.weight'\]\[1, 1\]: "):
        r.raise_for_status()


def test_one_step_rule_gives_input_shaped_steps() -> None:
    r = nd.jacobian(lambda p: model(p, X, "numpy"), params(), full_output=True)
    assert r.step["layer1"]["weight"].shape == (3, 2)
    assert r.step["head"][1].scale.shape == ()


def test_mixed_float32_float64_leaves() -> None:
    p = {"w32": np.array([0.3, 1.2], dtype=np.float32), "w64": np.array([0.7, -0.4])}
    seen = []

    def f(p: Any) -> Any:
        seen.append((p["w32"].dtype, p["w64"].dtype))
        return np.sin(p["w32"].astype(np.float64)).sum(-1) * np.cos(p["w64"]).sum(-1)

    g = nd.gradient(f, p)
    assert set(seen) == {(np.dtype(np.float32), np.dtype(np.float64))}  # own dtypes
    assert g["w32"].dtype == np.float32 and g["w64"].dtype == np.float64
    want = jax.grad(lambda p: jnp.sin(p["w32"]).sum() * jnp.cos(p["w64"]).sum())(
        {k: jnp.asarray(v, jnp.float64) for k, v in p.items()})
    # float32 leaves are stepped at float32's scale (eps32**(1/3)): ~1e-5 relative
    np.testing.assert_allclose(g["w32"], want["w32"], rtol=1e-4)
    np.testing.assert_allclose(g["w64"], want["w64"], rtol=1e-9)
    with pytest.raises(TypeError, match="float32, float64|float64, float32"):
        nd.hessian(f, p)
    v = {"w32": np.array([1.0, -1.0], dtype=np.float32), "w64": np.array([0.5, 2.0])}
    for evaluation in ("loop", "batched"):  # one directional difference per dtype group
        _, jv = nd.jvp(f, p, v, evaluation=evaluation)
        want_jv = sum(float(np.dot(want[k], v[k])) for k in p)
        np.testing.assert_allclose(jv, want_jv, rtol=1e-4)
    _, r = nd.jvp(f, p, v, full_output=True)
    assert r.status_counts() == {"SUCCESS": 1} and len(r.step) == 2


def test_non_float_leaves_pass_untouched() -> None:
    marker = object()
    ids = np.array([0, 2])
    p = {"w": np.array([1.0, 2.0, 3.0]), "ids": ids, "name": "net", "k": 3, "none": None,
         "obj": marker}

    def f(p: Any) -> Any:
        assert p["ids"] is ids and p["obj"] is marker and p["name"] == "net"
        return (p["w"][p["ids"]] ** 2) * p["k"]

    J = nd.jacobian(f, p)
    np.testing.assert_allclose(J["w"], [[6.0, 0, 0], [0, 0, 18.0]], rtol=1e-8)
    assert J["ids"] is None and J["name"] is None and J["obj"] is None
    with pytest.raises(TypeError, match="no floating-point value"):
        nd.jacobian(lambda p: p["k"] * 1.0, {"k": 1, "s": "a", "b": True})


@pytest.mark.parametrize("lib", LIBS)
def test_python_floats_in_a_tree_are_differentiated_as_jax_does(lib: str) -> None:
    Params = namedtuple("Params", "mu sigma")
    xs = _lib_array(lib, np.array([0.3, -1.2, 2.0]))
    xp = ops(lib)

    def nll(p: Any, xs: Any) -> Any:
        return (((xs - p.mu) / p.sigma) ** 2 / 2 + xp.log(p.sigma * 1.0)).sum()

    g = nd.gradient(nll, Params(0.5, 1.5), xs)
    want = jax.grad(nll_jax := lambda p: (((jnp.asarray(np.array([0.3, -1.2, 2.0])) - p.mu)
                                           / p.sigma) ** 2 / 2 + jnp.log(p.sigma)).sum())(
        Params(0.5, 1.5))
    assert isinstance(g, Params) and nll_jax is not None
    np.testing.assert_allclose([float(g.mu), float(g.sigma)], [want.mu, want.sigma], rtol=1e-8)
    mixed = nd.gradient(lambda p: (p["w"] * p["s"]).sum(),
                        {"w": _lib_array(lib, np.array([1.0, 2.0])), "s": 0.5})
    assert float(mixed["s"]) == pytest.approx(3.0) and mixed["s"].shape == ()


def test_lists_of_numbers_stay_arrays_lists_of_arrays_are_trees() -> None:
    J = nd.jacobian(lambda x: x ** 2, [1.0, 2.0])  # a list of numbers is an array
    assert isinstance(J, np.ndarray) and J.shape == (2, 2)
    got = []
    J = nd.jacobian(lambda p: got.append(type(p)) or p[0] * p[1].sum(),
                    [np.array([1.0]), np.array([2.0, 3.0])])
    assert got[0] is list and isinstance(J, list) and J[1].shape == (1, 2)


def test_flat_arrays_never_reach_the_tree_path(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.array([0.3, 1.1, -0.5])
    before = nd.jacobian(np.sin, x)
    full = nd.jacobian(np.sin, x, full_output=True, step=nd.steps.adaptive())
    monkeypatch.setattr("numdiffx._core.api.tree_jacobian", None)  # any use would fail
    monkeypatch.setattr(treeops, "_Signature", None)
    assert np.array_equal(nd.jacobian(np.sin, x), before)
    again = nd.jacobian(np.sin, x, full_output=True, step=nd.steps.adaptive())
    assert np.array_equal(again.value, full.value) and np.array_equal(again.error, full.error)
    nd.hessian(lambda x: (x ** 3).sum(), x)
    nd.jvp(np.sin, x, x)
    nd.hvp(lambda x: (x ** 3).sum(), x, x)
    nd.derivative(np.sin, x)


@pytest.mark.parametrize("lib", LIBS)
def test_single_leaf_tree_is_bit_identical_to_the_flat_call(lib: str) -> None:
    x = _lib_array(lib, np.array([0.3, 1.1, -0.5]))
    xp = ops(lib)

    def f(v: Any) -> Any:
        return xp.sin(v) * v[0]

    flat = nd.jacobian(f, x)
    tree = nd.jacobian(lambda p: f(p["x"]), {"x": x})["x"]
    assert np.array_equal(host(flat), host(tree))


def test_tree_errors_name_the_path() -> None:
    p = {"w": np.ones(2), "b": np.ones(3)}
    with pytest.raises(ValueError, match=r"tangents\['b'\] has shape \(2,\)"):
        nd.jvp(lambda p: p["w"].sum(), p, {"w": np.ones(2), "b": np.ones(2)})
    with pytest.raises(ValueError, match=r"no leaf at tangents\['b'\]"):
        nd.jvp(lambda p: p["w"].sum(), p, {"w": np.ones(2)})
    with pytest.raises(ValueError, match="batch_axis"):
        nd.jacobian(lambda p: p["w"], p, evaluation="batched", batch_axis=1)
    with pytest.raises(TypeError, match="several libraries"):
        torch = pytest.importorskip("torch")
        nd.jacobian(lambda p: p["w"], {"w": np.ones(2), "b": torch.ones(2)})


def test_f_returning_a_tree_from_flat_arrays() -> None:
    x = np.array([0.5, 2.0])

    def f(x: Any) -> Any:
        return {"a": np.sin(x), "s": (x ** 2).sum()}

    want = jax.jacrev(lambda x: {"a": jnp.sin(x), "s": (x ** 2).sum()})(jnp.asarray(x))
    assert_tree_close(nd.jacobian(f, x), want)
    r = nd.jacobian(f, x, full_output=True)
    assert_tree_close(r.value, want)
    value, jv = nd.jvp(f, x, np.ones(2))
    assert set(value) == {"a", "s"} and jv["a"].shape == (2,)
    H = nd.hessian(lambda x: {"e": (x ** 3).sum()}, x)
    np.testing.assert_allclose(H["e"], np.diag(6 * x), rtol=1e-6, atol=1e-7)


def test_gradient_and_hvp_from_a_tree_gradient() -> None:
    p = {"b": np.array([0.5, -1.0]), "a": np.array(2.0)}

    def loss(p: Any) -> Any:
        return (p["b"] ** 2).sum() * p["a"] ** 2

    def grad(p: Any) -> Any:  # returned in another key order, as jax.grad's sorted dicts
        return {"a": 2 * p["a"] * (p["b"] ** 2).sum(), "b": 2 * p["b"] * p["a"] ** 2}

    H = nd.hessian(None, p, grad=grad)
    want = jax.hessian(lambda p: (p["b"] ** 2).sum() * p["a"] ** 2)(
        {k: jnp.asarray(v) for k, v in p.items()})
    assert_tree_close(sorted_tree(H), want, rtol=1e-6, atol=1e-7)
    v = {"b": np.array([1.0, 0.0]), "a": np.array(1.0)}
    hv = nd.hvp(None, p, v, grad=grad, method="central")
    want_hv = jax.jvp(jax.grad(lambda p: (p["b"] ** 2).sum() * p["a"] ** 2),
                      ({k: jnp.asarray(a) for k, a in p.items()},),
                      ({k: jnp.asarray(a) for k, a in v.items()},))[1]
    assert_tree_close(sorted_tree(hv), want_hv, rtol=1e-6, atol=1e-7)


def test_derivative_of_an_elementwise_tree_function() -> None:
    t = {"a": np.array([0.1, 0.2]), "b": (np.array(1.5),)}
    d = nd.derivative(lambda t: {"a": np.sin(t["a"]), "b": (np.exp(t["b"][0]),)}, t)
    np.testing.assert_allclose(d["a"], np.cos(t["a"]), rtol=1e-9)
    np.testing.assert_allclose(d["b"][0], np.exp(1.5), rtol=1e-9)


# ---------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------
def _bad_linear() -> Any:
    torch = pytest.importorskip("torch")

    class WrongWeightGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, w: Any) -> Any:
            ctx.save_for_backward(x, w)
            return x @ w.T

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            x, w = ctx.saved_tensors
            gw = g.T @ x
            gw[1, 2] = gw[1, 2] * 1.01  # one weight's gradient 1% off
            return g @ w, gw

    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            self.weight = torch.nn.Parameter(torch.randn(4, 3, generator=gen,
                                                         dtype=torch.float64))
            self.bias = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))

        def forward(self, x: Any) -> Any:
            return WrongWeightGrad.apply(x, self.weight) + self.bias

    return torch.nn.Sequential(torch.nn.Linear(3, 3).double(), torch.nn.Tanh(), Linear())


def test_gradcheck_module_names_the_wrong_weight() -> None:
    torch = pytest.importorskip("torch")
    x = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3)
    good = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()).double()
    assert nd.gradcheck_module(good, x)
    net = _bad_linear()
    with pytest.raises(nd.GradcheckError, match=r"^d out\[0\]\[\d, 1\] / d params\['2\.weight'\]"
                       r"\[1, 2\]: numerical"):
        nd.gradcheck_module(net, x)
    # the same through gradcheck with a dict of named parameters
    params = {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
    with pytest.raises(nd.GradcheckError, match=r"in\[0\]\['2\.weight'\]\[1, 2\]"):
        nd.gradcheck(lambda p, x: torch.func.functional_call(net, p, (x,)), (params, x))
    assert not nd.gradcheck(lambda p, x: torch.func.functional_call(net, p, (x,)),
                            (params, x), raise_exception=False, fast_mode=True)


def test_gradcheck_trees_in_and_out_and_untouched_leaves() -> None:
    torch = pytest.importorskip("torch")
    w = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    frozen = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)  # no requires_grad
    config = {"power": 2, "name": "sq"}
    seen = []

    def f(p: Any, config: Any) -> Any:
        seen.append(p["frozen"] is frozen and config["name"] == "sq")
        return {"loss": (p["w"] ** config["power"] * p["frozen"]).sum(),
                "act": (torch.sin(p["w"]), p["w"] * 2)}

    assert nd.gradcheck(f, ({"w": w, "frozen": frozen}, config))
    assert all(seen)

    def wrong(p: Any) -> Any:  # a detached term: the backward misses d act / d w
        return {"act": torch.sin(p["w"]) + p["w"].detach() ** 2}

    with pytest.raises(nd.GradcheckError, match=r"d out\['act'\]\[\d\] / d in\[0\]\['w'\]"):
        nd.gradcheck(wrong, ({"w": w},))
    with pytest.raises(TypeError, match="reference=callable takes flat inputs"):
        nd.gradcheck(lambda p: p["w"], ({"w": np.ones(2)},), reference=lambda p: p)


def test_gradgradcheck_and_jax_gradcheck_on_dicts() -> None:
    torch = pytest.importorskip("torch")
    p = {"a": torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True),
         "b": torch.tensor(0.7, dtype=torch.float64, requires_grad=True)}
    assert nd.gradgradcheck(lambda p: (p["a"].sin() * p["b"] ** 2).sum(), (p,))
    jp = {"a": jnp.array([0.5, 1.5]), "b": (jnp.array(0.7),)}
    assert nd.gradcheck(lambda p: jnp.sin(p["a"]) * p["b"][0] ** 2, (jp,))


def _port() -> tuple[Any, Any, dict[str, np.ndarray], np.ndarray]:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    params = {"fc1.weight": rng.normal(size=(2, 3)), "fc1.bias": rng.normal(size=2),
              "fc2.weight": rng.normal(size=(1, 2)), "fc2.bias": rng.normal(size=1)}
    x = rng.normal(size=(2, 3))
    net = torch.nn.Sequential()
    net.fc1 = torch.nn.Linear(3, 2)
    net.act = torch.nn.Tanh()
    net.fc2 = torch.nn.Linear(2, 1)
    net = net.double()

    def f_torch(p: Any) -> Any:
        return torch.func.functional_call(net, p, (torch.as_tensor(x),)).ravel()

    def f_jax(p: Any) -> Any:  # the port: flax naming, kernels transposed
        h = jnp.tanh(jnp.asarray(x) @ p["dense1"]["kernel"] + p["dense1"]["bias"])
        return (h @ p["dense2"]["kernel"] + p["dense2"]["bias"]).ravel()

    return f_torch, f_jax, params, x


def test_cross_check_a_port_with_renamed_parameters() -> None:
    f_torch, f_jax, params, x = _port()

    def to_flax(p: Any) -> Any:
        return {"dense1": {"kernel": p["fc1.weight"].T, "bias": p["fc1.bias"]},
                "dense2": {"kernel": p["fc2.weight"].T, "bias": p["fc2.bias"]}}

    report = nd.cross_check({"torch": f_torch, "jax": f_jax}, params, names={"jax": to_flax})
    assert report.passed
    assert any("['fc2.weight']" in r.quantity for r in report.rows)

    def f_jax_untransposed(p: Any) -> Any:  # a dict mapping: names only, same layout
        h = jnp.tanh(jnp.asarray(x) @ p["dense1"]["kernel"].T + p["dense1"]["bias"])
        return (h @ p["dense2"]["kernel"].T + p["dense2"]["bias"]).ravel()

    mapping = {"fc1.weight": ("dense1", "kernel"), "fc1.bias": ("dense1", "bias"),
               "fc2.weight": ("dense2", "kernel"), "fc2.bias": ("dense2", "bias")}
    assert nd.cross_check({"torch": f_torch, "jax": f_jax_untransposed}, params,
                          names={"jax": mapping}).passed

    def wrong_port(p: Any) -> Any:  # the second layer's bias enters through sin
        h = jnp.tanh(jnp.asarray(x) @ p["dense1"]["kernel"] + p["dense1"]["bias"])
        return (h @ p["dense2"]["kernel"] + jnp.sin(p["dense2"]["bias"])).ravel()

    report = nd.cross_check({"torch": f_torch, "jax": wrong_port}, params,
                            names={"jax": to_flax}, raise_exception=False)
    assert not report.passed
    assert {r.quantity for r in report.disagreeing} >= {"value",
                                                        "jacobian d/d inputs[0]['fc2.bias']"}
    assert not any("fc1" in r.quantity for r in report.disagreeing)
    with pytest.raises(ValueError, match=r"names\['flax'\] names no implementation"):
        nd.cross_check({"torch": f_torch, "jax": f_jax}, params, names={"flax": to_flax})



def test_trees_under_jax_jit() -> None:
    p = {"w": jnp.array([0.5, 1.0]), "b": (jnp.array(2.0),)}

    def f(p: Any) -> Any:
        return jnp.sin(p["w"] * p["b"][0])

    J = jax.jit(lambda p: nd.jacobian(f, p))(p)
    assert_tree_close(J, jax.jacrev(f)(p))
    r = jax.jit(lambda p: nd.jacobian(f, p, full_output=True))(p)
    assert isinstance(r, nd.DiffResult) and r.status_counts() == {"SUCCESS": 6}


def test_torch_named_parameters_are_not_touched() -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Linear(3, 2).double()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    params = dict(net.named_parameters())  # leaves that require grad

    def loss(p: Any) -> Any:
        return torch.func.functional_call(net, p, (x,)).pow(2).sum()

    g = nd.gradient(loss, params)
    want = torch.func.grad(loss)({k: v.detach() for k, v in params.items()})
    for k in want:
        assert not g[k].requires_grad
        torch.testing.assert_close(g[k], want[k], rtol=RTOL, atol=1e-9)
        assert torch.equal(params[k], before[k]) and params[k].grad is None


@pytest.mark.parametrize("lib", LIBS)
def test_nested_tuple_and_namedtuple_arguments_batched_and_adaptive(lib: str) -> None:
    xp = ops(lib)
    arg = to_lib(lib, ((np.array([0.2, 0.4]), np.array(1.5)), Pair(np.array([0.3]),
                                                                   np.array([[1.0, 2.0]]))))

    def f(t: Any) -> Any:  # works unbatched and with a leading batch axis on every leaf
        (a, s), pair = t
        shift = (pair.shift ** 2).sum(-1).sum(-1)
        return xp.sin(a * s[..., None]) * pair.scale + shift[..., None]

    want = jax.jacrev(lambda t: jnp.sin(t[0][0] * t[0][1]) * t[1].scale
                      + (t[1].shift ** 2).sum())(
        to_lib("jax", ((np.array([0.2, 0.4]), np.array(1.5)),
                       Pair(np.array([0.3]), np.array([[1.0, 2.0]])))))
    for evaluation in ("auto", "batched"):
        assert_tree_close(nd.jacobian(f, arg, evaluation=evaluation), want)
    r = nd.jacobian(f, arg, step=nd.steps.adaptive(), full_output=True)
    assert isinstance(r.value[1], Pair) and r.status_counts() == {"SUCCESS": 12}
    assert_tree_close(r.value, want)
    tangent = to_lib(lib, ((np.array([1.0, 0.0]), np.array(0.5)),
                           Pair(np.array([1.0]), np.array([[0.0, 1.0]]))))
    value, jv = nd.jvp(f, (arg,), (tangent,), step=nd.steps.adaptive(), full_output=True)
    flat_want = sum(np.tensordot(np.asarray(w), np.asarray(host(t)), axes=np.ndim(t))
                    for w, t in zip(jax.tree_util.tree_leaves(want),
                                    jax.tree_util.tree_leaves(tangent)))
    np.testing.assert_allclose(host(jv.value), flat_want, rtol=1e-8)
    assert host(jv.status).tolist() == [0, 0]


def test_tree_results_stay_on_the_leaves_device() -> None:
    devices = jax.devices("cpu")
    if len(devices) < 2:
        pytest.skip("jax has one host device here")
    dev = devices[1]
    p = {"w": jax.device_put(jnp.array([0.5, 1.0]), dev), "s": 2.0}
    J = nd.jacobian(lambda p: jnp.sin(p["w"]) * p["s"], p)
    g = nd.gradient(lambda p: (jnp.sin(p["w"]) * p["s"]).sum(), p, full_output=True)
    for leaf in [*jax.tree_util.tree_leaves(J), *jax.tree_util.tree_leaves(g.value)]:
        assert leaf.devices() == {dev}


def test_python_float_tangents_follow_the_tree_library() -> None:
    torch = pytest.importorskip("torch")
    p = {"w": torch.tensor([1.0, 2.0], dtype=torch.float64), "s": 0.5}
    v = {"w": torch.ones(2, dtype=torch.float64), "s": 1.0}
    _, jv = nd.jvp(lambda p: p["w"] * p["s"], p, v)
    torch.testing.assert_close(jv, torch.tensor([1.5, 2.5], dtype=torch.float64))
    hv = nd.hvp(lambda p: (p["w"] ** 2).sum() * p["s"], p, v)  # H v of s * |w|^2
    torch.testing.assert_close(hv["w"], torch.tensor([3.0, 5.0], dtype=torch.float64))
    torch.testing.assert_close(hv["s"], torch.tensor(6.0, dtype=torch.float64))


def _module_level_loss(p: Any) -> Any:
    return np.sin(p["w"]) * p["b"][0]


def test_trees_through_an_executor_and_pickle() -> None:
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    from numdiffx._core.treeops import FlatF
    from numdiffx._core.trees import flatten

    p = {"w": np.array([0.5, 1.0, 1.5]), "b": [np.array(2.0)], "tag": "x"}
    with ThreadPoolExecutor(2) as pool:
        J = nd.jacobian(_module_level_loss, p, executor=pool)
    assert_tree_close(J["w"], nd.jacobian(_module_level_loss, p)["w"], rtol=0)
    assert J["tag"] is None
    tree = flatten(p, "args[0]")
    flat = FlatF(_module_level_loss, [None], {0: tree}, {0: [1]}, np)
    again = pickle.loads(pickle.dumps(flat))  # a process pool pickles f
    v = tree.vectors(np)[0]
    assert np.array_equal(again(None, v), flat(None, v))
