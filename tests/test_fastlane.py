"""The fast lane (``numdiffx._core.fastlane``) against the engine it stands in for.

A plain ``jacobian``/``gradient`` call takes the lane; its result must be the engine's,
bit for bit, on every stencil, step rule, evaluation mode and backend with indexed
updates, and every call that is not plain (a non-finite value, a 16-bit f, several
chunks) must come back exactly as the engine computes it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from array_api_compat import array_namespace

import numdiffx as nd
from numdiffx._core import api, fastlane
from tests.conftest import _FACTORIES

LANE_BACKENDS = ["numpy", "torch", "torch_cuda", "cupy"]  # those with indexed updates


@pytest.fixture(params=LANE_BACKENDS)
def lb(request: pytest.FixtureRequest) -> Any:
    return _FACTORIES[request.param]()


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls that took the lane (each builds its points once)."""
    calls: list[int] = []
    build = fastlane._diagonal_points

    def counted(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return build(*a, **k)

    monkeypatch.setattr(fastlane, "_diagonal_points", counted)
    return calls


def engine(monkeypatch: pytest.MonkeyPatch, fn: Any) -> Any:
    """``fn()`` with the lane closed: the engine computes it."""
    with monkeypatch.context() as m:
        m.setattr(api, "fast_jacobian", lambda *a, **k: fastlane.NOT_TAKEN)
        return fn()


def same(lb: Any, a: Any, b: Any) -> None:
    if isinstance(a, nd.DiffResult):  # field by field (value, error, step, status), nfev
        assert type(b) is nd.DiffResult and a.nfev == b.nfev
        for name in ("value", "error", "step", "status"):
            same(lb, getattr(a, name), getattr(b, name))
        return
    a, b = lb.to_numpy(a), lb.to_numpy(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)  # bit for bit, NaN where NaN


def _matrix(x: Any) -> Any:
    return x[..., :1] * x + x ** 3  # (..., n) -> (..., n): every column moves row 0


METHODS = ["central", "forward", "backward", nd.central(order=4), nd.forward(order=2),
           nd.Stencil(offsets=(-2, -1, 1, 2), deriv=1)]
STEPS = [None, 1e-4, nd.steps.relative(1e-6, typical=0.1), nd.steps.auto(typical=1e-3),
         nd.steps.auto(scale_with_x=False)]


@pytest.mark.parametrize("method", METHODS, ids=str)
@pytest.mark.parametrize("step", STEPS, ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lane_is_the_engine_bit_for_bit(lb: Any, method: Any, step: Any, dtype: str,
                                        monkeypatch: pytest.MonkeyPatch,
                                        taken: list[int]) -> None:
    x = lb.asarray(np.random.default_rng(3).uniform(-2, 3, 7), dtype)
    x[2] = 0.0
    def call() -> Any:
        return nd.jacobian(_matrix, x, method=method, step=step, evaluation="batched")

    fast = call()
    assert taken == [1]
    same(lb, fast, engine(monkeypatch, call))


@pytest.mark.parametrize("evaluation", ["auto", "vmap", "loop"])
@pytest.mark.parametrize("shape", [(), (1,), (3, 4)])
def test_modes_and_shapes(lb: Any, evaluation: str, shape: tuple[int, ...],
                          monkeypatch: pytest.MonkeyPatch, taken: list[int]) -> None:
    if evaluation == "vmap" and lb.name in ("numpy", "cupy"):
        pytest.skip("no vmap in this library")
    x = lb.asarray(np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape))

    def f(v: Any) -> Any:  # a matrix output of a per-point f
        s = (v ** 2).sum()
        return lb.xp.stack([lb.xp.sin(v) * s, v * 2.0])

    for op in (lambda: nd.jacobian(f, x, evaluation=evaluation),
               lambda: nd.gradient(lambda v: (lb.xp.sin(v) * v).sum(), x,
                                   evaluation=evaluation, method="forward")):
        same(lb, op(), engine(monkeypatch, op))
    assert len(taken) == 2


@pytest.mark.parametrize("full_output", [False, True])
def test_other_arguments_and_argnums(lb: Any, full_output: bool,
                                     monkeypatch: pytest.MonkeyPatch, taken: list[int]) -> None:
    a = lb.asarray([1.0, -2.0, 0.5])
    b = lb.asarray([0.3, 0.7])

    def f(u: Any, v: Any, c: float) -> Any:
        return lb.xp.concat([u * v[..., :1], v ** 2 * c], axis=-1)

    f0 = f(a, b, 3.0)
    fo = dict(full_output=full_output)
    for fn in (lambda: nd.jacobian(f, a, b, 3.0, f0=f0, **fo), lambda: nd.jacobian(
            f, a, b, 3.0, argnums=1, f0=f0, evaluation="batched", method="forward", **fo)):
        same(lb, fn(), engine(monkeypatch, fn))
    for argnums in (0, 1, -1 + 2):
        def call(argnums: int = argnums) -> Any:
            return nd.jacobian(f, a, b, 3.0, argnums=argnums, evaluation="batched", **fo)

        same(lb, call(), engine(monkeypatch, call))
    assert len(taken) == 5


def test_not_plain_goes_to_the_engine(lb: Any, monkeypatch: pytest.MonkeyPatch,
                                      taken: list[int]) -> None:
    x = lb.asarray([0.5, 1.0, 2.0])
    calls = [
        lambda: nd.jacobian(lb.xp.sin, x, evaluation="batched", chunk_size=2),
        lambda: nd.jacobian(lb.xp.sin, x, evaluation="batched", memory_budget=64),
        lambda: nd.jacobian(lb.xp.sin, x, evaluation="batched", method="complex_step"),
        lambda: nd.jacobian(lb.xp.sin, x, evaluation="batched", step=nd.steps.adaptive()),
        lambda: nd.jacobian(lb.xp.sin, x, evaluation="batched", sparsity=np.eye(3, dtype=bool),
                            sparse_output=False),
    ]
    for call in calls:
        same(lb, call(), engine(monkeypatch, call))
    assert taken == []


@pytest.mark.parametrize("full_output", [False, True])
def test_non_finite_values_get_the_engines_statuses(lb: Any, full_output: bool,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    taken: list[int]) -> None:
    """A domain edge at 0: the lane sees a non-finite sum and hands the call over; the
    result is the engine's (one-sided retry, NaN where no stencil works)."""
    xp = lb.xp
    x = lb.asarray([1e-9, 1.0, -1.0, 4.0])

    def f(v: Any) -> Any:
        return xp.where(v >= 0, v ** 2, xp.asarray(float("nan"), dtype=v.dtype))

    def call() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return nd.jacobian(f, x, evaluation="batched", full_output=full_output)

    fast = call()
    assert taken == [1]  # tried, then handed over
    same(lb, fast, engine(monkeypatch, call))
    if full_output:
        assert fast.status_names[0, 0] == "ONE_SIDED"
        assert fast.status_names[2, 2] == "NON_FINITE"
        fast = fast.value
    got = lb.to_numpy(fast)
    assert np.isnan(got[2, 2]) and abs(got[3, 3] - 8.0) < 1e-8
    assert abs(got[0, 0] - 2e-9) < 1e-12  # the one-sided retry reached it


def test_errors_and_inputs_kept(lb: Any) -> None:
    x = lb.asarray([1.0, 2.0])
    before = lb.to_numpy(x).copy()

    def writes(v: Any) -> Any:
        v[..., 0] = 100.0  # f writing into its argument must not move x
        return v * 3.0

    J = lb.to_numpy(nd.jacobian(writes, x, evaluation="batched"))
    np.testing.assert_array_equal(lb.to_numpy(x), before)
    assert J[1, 1] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="gradient needs a scalar-valued f"):
        nd.gradient(lambda v: v * 2.0, x, evaluation="batched")
    with pytest.raises(ValueError, match="mixes the rows"):
        nd.jacobian(lambda v: v * v.shape[0], x, evaluation="batched")
    with pytest.raises(ValueError, match="chunk_size"):
        nd.jacobian(lb.xp.sin, x, evaluation="batched", chunk_size=0)
    with pytest.raises(ValueError, match="method="):
        nd.jacobian(lb.xp.sin, x, method="centre")


def test_requires_grad_input_works_and_stays_attached() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    J = nd.jacobian(torch.sin, x)
    assert not J.requires_grad and x.requires_grad and x.grad is None
    torch.testing.assert_close(J, torch.diag(torch.cos(x.detach())), rtol=1e-9, atol=0)


@pytest.mark.parametrize("bad", [dict(retries=-1), dict(batch_axis=False, evaluation="loop"),
                                 dict(batch_axis=0.0), dict(argnums=True),
                                 dict(memory_budget=0), dict(evaluation="batch")])
def test_bad_options_get_the_engines_errors(bad: dict[str, Any]) -> None:
    """The lane never accepts what the engine refuses: each goes there and is refused."""
    with pytest.raises((TypeError, ValueError)):
        nd.jacobian(np.sin, np.array([1.0, 2.0]), **bad)


@pytest.fixture
def bridged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the torch results that came back from the host bridge."""
    torch_backend = pytest.importorskip("numdiffx.backends._torch").BACKEND
    calls: list[int] = []
    back = type(torch_backend).from_host

    def counted(self: Any, a: Any) -> Any:
        calls.append(1)
        return back(self, a)

    monkeypatch.setattr(type(torch_backend), "from_host", counted)
    return calls


@pytest.mark.parametrize("method", ["forward", "central", nd.central(order=4)], ids=str)
def test_torch_cpu_batched_runs_on_host_views(method: Any, monkeypatch: pytest.MonkeyPatch,
                                              bridged: list[int]) -> None:
    """torch on the CPU, batched: the steps, points, checks and differences run in numpy on
    views of the same memory; f gets torch tensors (the other arguments the caller's,
    repeated over the batch); the result is the engine's bit for bit, a torch tensor of
    x's dtype owning no memory of x's."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64)
    w = torch.tensor([1.5, 2.0, -0.5, 3.0], dtype=torch.float64)
    seen: list[tuple[type, tuple[int, ...], tuple[int, ...]]] = []

    def f(a: Any, b: Any, scale: float) -> Any:
        seen.append((type(a), tuple(a.shape), tuple(b.shape)))
        return scale * a[..., :1] * b + torch.sin(a) * b

    def call() -> Any:
        return nd.jacobian(f, x, w, 2.0, method=method, evaluation="batched")

    fast = call()
    assert bridged == [1]
    assert type(fast) is torch.Tensor and fast.dtype == torch.float64
    assert {s[0] for s in seen} == {torch.Tensor}
    assert all(s[1][0] == s[2][0] and s[2][1:] == (4,) for s in seen)  # w repeated
    np.testing.assert_array_equal(fast.numpy(), engine(monkeypatch, call).numpy())
    before = x.clone()
    fast.fill_(7.0)
    assert torch.equal(x, before)


def test_host_bridge_hands_other_outputs_to_the_engine(monkeypatch: pytest.MonkeyPatch,
                                                       bridged: list[int]) -> None:
    """What numpy does not carry unchanged (a tuple to stack, complex, float16, another
    tensor type) is refused before any result: the engine computes it, as without the
    bridge; a Parameter input is bridged, its result carries no graph."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float32)
    outputs = {
        "tuple": lambda v: (v ** 2, torch.sin(v)),
        "complex": lambda v: v * (1 + 2j),
        "float16": lambda v: (v ** 2).to(torch.float16),
    }
    for name, fn in outputs.items():
        got = nd.jacobian(fn, x, evaluation="batched")
        same_as = engine(monkeypatch, lambda fn=fn: nd.jacobian(fn, x, evaluation="batched"))
        assert got.dtype == same_as.dtype, name
        np.testing.assert_array_equal(got.numpy(), same_as.numpy(), err_msg=name)
    assert bridged == []
    p = torch.nn.Parameter(x.clone())
    J = nd.jacobian(torch.sin, p, evaluation="batched")
    assert bridged == [1] and not J.requires_grad and p.grad is None
    torch.testing.assert_close(J, torch.diag(torch.cos(x)), rtol=1e-3, atol=0)


def _curved(x: Any) -> Any:
    """Every kind of entry at once: curved, linear, constant, ~0 (x[2] = 0), large, and a
    last output whose difference is lost to round-off (1e20 + x: never SUCCESS)."""
    body = x[..., :1] * x + x ** 3 + 1e3 * x[..., 2:3] ** 2 + 5.0
    return array_namespace(x).concat([body, 1e20 + x[..., 1:2]], axis=-1)


@pytest.mark.parametrize("method", METHODS, ids=str)
@pytest.mark.parametrize("step", STEPS, ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_full_output_is_the_engines_bit_for_bit(lb: Any, method: Any, step: Any, dtype: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                taken: list[int]) -> None:
    """``full_output=True`` on the lane: value, error estimate, step, nfev and statuses are
    the engine's (its rule, ``one_pass`` and estimate run on the lane's one batch)."""
    x = lb.asarray(np.random.default_rng(5).uniform(-2, 3, 6), dtype)
    x[2] = 0.0

    def call() -> Any:
        return nd.jacobian(_curved, x, method=method, step=step, evaluation="batched",
                           full_output=True)

    fast = call()
    assert taken == [1]
    slow = engine(monkeypatch, call)
    same(lb, fast, slow)
    assert (lb.to_numpy(fast.status)[-1] != 0).any()  # 1e20 + x: never SUCCESS


@pytest.mark.parametrize("evaluation", ["auto", "batched", "vmap", "loop"])
@pytest.mark.parametrize("shape", [(), (1,), (3, 4)])
def test_full_output_modes_shapes_gradient(lb: Any, evaluation: str, shape: tuple[int, ...],
                                           monkeypatch: pytest.MonkeyPatch,
                                           taken: list[int]) -> None:
    if evaluation == "vmap" and lb.name in ("numpy", "cupy"):
        pytest.skip("no vmap in this library")
    x = lb.asarray(np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape))
    xp = lb.xp

    def f(v: Any) -> Any:
        s = (v ** 2).sum()
        return xp.stack([xp.sin(v) * s, v * 2.0, xp.cos(v) + 1e8])

    def g(v: Any) -> Any:
        return (xp.sin(v) * v).sum()

    batched = evaluation == "batched"
    calls = [lambda m=m: nd.gradient(g, x, evaluation=evaluation, method=m, full_output=True)
             for m in ("central", "forward")]
    if not batched:  # f above is per point
        calls.append(lambda: nd.jacobian(f, x, evaluation=evaluation, full_output=True))
    else:
        def gb(v: Any) -> Any:
            return (xp.sin(v) * v).reshape(v.shape[0], -1).sum(-1)

        calls = [lambda m=m: nd.gradient(gb, x, evaluation="batched", method=m,
                                         full_output=True) for m in ("central", "forward")]
    for op in calls:
        same(lb, op(), engine(monkeypatch, op))
    assert len(taken) == len(calls)


def test_full_output_torch_host_bridge(monkeypatch: pytest.MonkeyPatch,
                                       bridged: list[int]) -> None:
    """torch on the CPU, batched, small: the estimate runs in numpy on the host views; every
    field comes back a torch tensor equal to the engine's (which runs in torch)."""
    torch = pytest.importorskip("torch")
    for method in ("central", "forward", nd.central(order=4)):
        x = torch.tensor([0.3, -1.2, 2.0, 0.0, 7.5], dtype=torch.float64)

        def call(method: Any = method, x: Any = x) -> Any:
            return nd.jacobian(_curved, x, method=method, evaluation="batched",
                               full_output=True)

        fast = call()
        slow = engine(monkeypatch, call)
        for name in ("value", "error", "step", "status"):
            got, want = getattr(fast, name), getattr(slow, name)
            assert type(got) is torch.Tensor and got.dtype == want.dtype, name
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=name)
        assert fast.nfev == slow.nfev
    assert len(bridged) == 3 * 4  # value, error, step, status of each call


@pytest.fixture
def jax_bridged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the jax results that came back from the host bridge."""
    jax_backend = pytest.importorskip("numdiffx.backends._jax").BACKEND
    calls: list[int] = []
    back = type(jax_backend).from_host

    def counted(self: Any, a: Any) -> Any:
        calls.append(1)
        return back(self, a)

    monkeypatch.setattr(type(jax_backend), "from_host", counted)
    return calls


@pytest.mark.parametrize("evaluation", ["batched", "vmap", "auto", "loop"])
def test_jax_eager_runs_on_host_views(evaluation: str, monkeypatch: pytest.MonkeyPatch,
                                      jax_bridged: list[int]) -> None:
    """jax eagerly on the CPU: numdiffx's arithmetic in numpy, f (and jax.vmap of f) on
    jax arrays, every stencil and rule the engine's bits (XLA's division is not numpy's:
    the quotient is XLA's); another argument stays the caller's jax array."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = jnp.asarray(np.random.default_rng(3).uniform(-2, 3, 7)).at[2].set(0.0)
    w = jnp.linspace(0.5, 2.0, 7, dtype=x.dtype)
    seen: set[type] = set()

    def f(v: Any, c: Any) -> Any:
        seen.add(type(c))
        return jnp.sin(v) * jnp.exp(v[..., :1]) / c + jnp.tanh(v * 3.0) * 1.7 + v ** 3

    for method in METHODS:
        for step in STEPS:
            def call(method: Any = method, step: Any = step) -> Any:
                return nd.jacobian(f, x, w, method=method, step=step, evaluation=evaluation)

            got, want = call(), engine(monkeypatch, call)
            assert type(got) is type(want) and got.dtype == want.dtype
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want),
                                          err_msg=f"{method} {step}")
    assert len(jax_bridged) == len(METHODS) * len(STEPS)
    assert seen == {type(x)}
    g = nd.gradient(lambda v: (v ** 2).reshape(*v.shape[:-2], -1).sum(-1), jnp.ones((2, 3)),
                    method="forward",
                    evaluation=evaluation)
    assert g.shape == (2, 3) and len(jax_bridged) == len(METHODS) * len(STEPS) + 1


def test_jax_eager_hands_over() -> None:
    """What the bridge does not take goes to the engine: a non-finite value (its one-sided
    retry), full_output, a tuple output, a traced x; a batched f mixing rows is caught."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = jnp.asarray([1e-9, 1.0, -1.0, 4.0])

    def f(v: Any) -> Any:
        return jnp.where(v >= 0, v ** 2, jnp.nan)

    J = np.asarray(nd.jacobian(f, x, evaluation="batched"))
    assert np.isnan(J[2, 2]) and abs(J[3, 3] - 8.0) < 1e-4 and abs(J[0, 0]) < 1e-4
    r = nd.jacobian(jnp.sin, x, full_output=True)
    assert type(r.value) is type(x) and r.status_counts() == {"SUCCESS": 16}
    T = nd.jacobian(lambda v: (v, 2 * v), x)
    assert T.shape == (2, 4, 4)
    jitted = jax.jit(lambda v: nd.jacobian(jnp.sin, v))(x)
    np.testing.assert_allclose(np.asarray(jitted), np.diag(np.cos(np.asarray(x))), rtol=1e-3,
                               atol=1e-6)
    with pytest.raises(ValueError, match="mixes the rows"):
        nd.jacobian(lambda v: v - v.mean(axis=0), x, evaluation="batched")


@pytest.mark.parametrize("lane", [True, False])
def test_vmap_mode_checks_against_f_itself(lane: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under vmap, f(x) and the once-per-computation spot check are f itself on one point
    (no trace of the mapped f; vmap is checked against f): one traced call, two plain."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    kinds: list[bool] = []

    def f(v: Any) -> Any:
        kinds.append(isinstance(v, jax.core.Tracer))
        return jnp.sin(v) * v[0]

    x = jnp.asarray([0.5, 1.0, 2.0])

    def call() -> Any:
        return nd.jacobian(f, x, evaluation="vmap")

    J = call() if lane else engine(monkeypatch, call)
    assert sorted(kinds) == [False, False, True]
    want = np.diag(np.cos(np.asarray(x)) * 0.5)
    want[:, 0] += np.sin(np.asarray(x))
    np.testing.assert_allclose(np.asarray(J), want, rtol=1e-4, atol=1e-5)
