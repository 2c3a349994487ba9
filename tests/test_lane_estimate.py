"""``full_output=True`` on the fast lane through the fused estimate
(``numdiffx._core.strategies.lane_estimate``) against the engine it stands in for.

Numpy calls and torch's small batched CPU calls (the host bridge) with ``central``,
``forward`` or ``backward`` compute the estimate and statuses in a few numpy operations
on the lane's own batch. Their value, step, nfev and status must be the engine's bit for
bit, and the error estimate too outside subnormal intermediates (float32 near 1e-38:
within 1e-4 relative); every kind of entry (SUCCESS, ROUNDOFF, NONSMOOTH, unresolved
slopes, a stationary point the probe re-judges, a diagnostic that overflows) is covered,
and the fused path must actually be the one taken.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core import api, fastlane
from numdiffx._core.strategies import lane_estimate, nominal
from tests.conftest import _FACTORIES


@pytest.fixture(params=["numpy", "torch"])
def lb(request: pytest.FixtureRequest) -> Any:
    return _FACTORIES[request.param]()


def _spied(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, real: Any) -> list[Any]:
    """``module.name`` replaced by ``real`` recording what each call returned."""
    seen: list[Any] = []

    def counted(*a: Any) -> Any:
        out = real(*a)
        seen.append(out)
        return out

    monkeypatch.setattr(module, name, counted)
    return seen


@pytest.fixture
def fused(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each call of the fused estimate returned (None: handed to ``one_pass``)."""
    return _spied(monkeypatch, fastlane, "lane_estimate", lane_estimate.lane_estimate)


def engine(monkeypatch: pytest.MonkeyPatch, fn: Any) -> Any:
    """``fn()`` with the lane closed: the engine computes it."""
    with monkeypatch.context() as m:
        m.setattr(api, "fast_jacobian", lambda *a, **k: fastlane.NOT_TAKEN)
        return fn()


def same(lb: Any, a: Any, b: Any, error_rtol: float = 0.0) -> None:
    assert type(a) is nd.DiffResult and type(b) is nd.DiffResult and a.nfev == b.nfev
    for name in ("value", "step", "status", "error"):
        x, y = lb.to_numpy(getattr(a, name)), lb.to_numpy(getattr(b, name))
        assert x.shape == y.shape and x.dtype == y.dtype, name
        if name == "error" and error_rtol:
            np.testing.assert_allclose(x, y, rtol=error_rtol, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)  # bit for bit, NaN where NaN


def _mixed(x: Any) -> Any:
    """Curved, linear, constant and ~0 entries (every column moves rows 0 and 1)."""
    return 2.0 * x + x[..., :1] * x ** 2 + 0.5 * x[..., 1:2] ** 3 + 3.0


def _success(x: Any) -> Any:
    return 2.0 * x


FUNCTIONS = {
    "linear": _success,  # every entry SUCCESS: the fused verdict alone
    "mixed": _mixed,
    "roundoff": lambda x: 1e20 + x,  # every entry ROUNDOFF
    "cubic_at_0": lambda x: x ** 3,  # unresolved slopes at x = 0
    "kink": lambda x: abs(x) + x ** 2,  # a kink at x = 0: NONSMOOTH
}


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("fname", list(FUNCTIONS))
@pytest.mark.parametrize("step", [None, 1e-4, nd.steps.relative(1e-6)], ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_is_the_engine(lb: Any, method: str, fname: str, step: Any, dtype: str,
                             monkeypatch: pytest.MonkeyPatch, fused: list[Any]) -> None:
    x = lb.asarray([0.0, -1.3, 2.1, 1e-3, 5.0, -0.2], dtype)
    f = FUNCTIONS[fname]

    def call() -> Any:
        return nd.jacobian(f, x, method=method, step=step, evaluation="batched",
                           full_output=True)

    fast = call()
    assert len(fused) == 1 and fused[0] is not None  # the fused estimate decided it
    same(lb, fast, engine(monkeypatch, call))


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_gradient_and_stationary_probe(lb: Any, method: str, monkeypatch: pytest.MonkeyPatch,
                                       fused: list[Any]) -> None:
    """A gradient at a minimum (0 where the probe re-judges its NONSMOOTH/ROUNDOFF central
    entries), and one away from it; the probe's own evaluation hands the call over."""
    for center in (0.0, 0.7):
        x = lb.asarray([center, center + 1.5, center - 2.0, 1e-9 + center])

        def g(v: Any, c: float = center) -> Any:
            return ((v - c) ** 2).sum(-1) + 0.1 * (v ** 4).sum(-1)

        def call(g: Any = g, x: Any = x) -> Any:
            return nd.gradient(g, x, method=method, evaluation="batched", full_output=True)

        same(lb, call(), engine(monkeypatch, call))
    assert len(fused) == 2


def test_all_success_skips_the_engines_estimate(monkeypatch: pytest.MonkeyPatch,
                                                fused: list[Any]) -> None:
    """The common call (every entry SUCCESS) never runs ``one_pass``'s estimate."""
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("the engine's estimate ran")

    monkeypatch.setattr(nominal, "estimate", refuse)
    x = np.linspace(-1.0, 2.0, 12)
    for op in (nd.jacobian, nd.gradient):
        f = _success if op is nd.jacobian else (lambda v: (v ** 2).sum(-1))
        r = op(f, x + 3.0, evaluation="batched", full_output=True)
        assert (r.status == 0).all()
    assert len(fused) == 2 and all(out is not None and not out[2] for out in fused)


def test_overflowing_diagnostic_goes_to_one_pass(monkeypatch: pytest.MonkeyPatch,
                                                 fused: list[Any]) -> None:
    """f(x -+ h) - f(x) overflows while f(x + h) - f(x - h) does not: the fused path
    declines (None) and the engine's own estimate runs on the same batch."""
    x = np.array([0.5, 1.5])

    def f(v: Any) -> Any:
        return np.where(v == x, -1e308, 1e308)

    def call() -> Any:
        return nd.jacobian(f, x, evaluation="batched", full_output=True)

    with np.errstate(over="ignore"):
        fast = call()
        slow = engine(monkeypatch, call)
    assert fused == [None]
    same(_FACTORIES["numpy"](), fast, slow)


def test_subnormal_intermediates_round_within_documented_bound(
        monkeypatch: pytest.MonkeyPatch, fused: list[Any]) -> None:
    """float32 at ~1e-37: the folded safety factors round a subnormal term differently;
    the value, step and status stay the engine's, the estimate within 1e-4 relative."""
    x = np.random.default_rng(3).standard_normal(7).astype(np.float32) * 1e-7

    def call() -> Any:
        return nd.jacobian(lambda v: v ** 4, x, method="forward", evaluation="batched",
                           full_output=True)

    same(_FACTORIES["numpy"](), call(), engine(monkeypatch, call), error_rtol=1e-4)
    assert fused and fused[0] is not None


def test_results_own_their_memory() -> None:
    """The scratch the estimate reuses never backs a result: an earlier result is
    unchanged by later calls (same shape, other shapes, another thread)."""
    x = np.linspace(0.5, 2.0, 5)
    first = nd.jacobian(lambda v: v ** 3, x, evaluation="batched", full_output=True)
    kept = {name: np.copy(getattr(first, name)) for name in ("value", "error", "status")}
    nd.jacobian(lambda v: 7.0 * v ** 2, x, evaluation="batched", full_output=True)
    nd.jacobian(lambda v: v ** 2, np.ones(3), evaluation="batched", full_output=True)
    worker = threading.Thread(target=lambda: nd.jacobian(
        lambda v: -v ** 5, x, evaluation="batched", full_output=True))
    worker.start()
    worker.join()
    for name, want in kept.items():
        np.testing.assert_array_equal(getattr(first, name), want, err_msg=name)


@pytest.fixture
def jvp_fused(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each jvp's fused estimate returned (None: the engine's estimate ran)."""
    return _spied(monkeypatch, nominal, "_fused_estimate", nominal._fused_estimate)


JVP_FUNCTIONS = {"linear": _success, "mixed": _mixed, "roundoff": FUNCTIONS["roundoff"],
                 "cubic_at_0": FUNCTIONS["cubic_at_0"], "kink": FUNCTIONS["kink"],
                 "sum": lambda x: (x * x).sum(-1)}


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("fname", list(JVP_FUNCTIONS))
@pytest.mark.parametrize("evaluation", ["auto", "batched"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_jvp_fused_is_the_engine(lb: Any, method: str, fname: str, evaluation: str,
                                 dtype: str, monkeypatch: pytest.MonkeyPatch,
                                 jvp_fused: list[Any]) -> None:
    """jvp's ``full_output``: numpy, and torch's CPU tensors read as numpy views, give the
    engine's value, step, nfev, status and estimate (each field the library's type)."""
    x = lb.asarray([0.0, -1.3, 2.1, 1e-3, 5.0, -0.2], dtype)
    v = lb.asarray([1.0, 0.5, -2.0, 0.0, 1.0, 3.0], dtype)
    f = JVP_FUNCTIONS[fname]

    def call() -> Any:
        return nd.jvp(f, (x,), (v,), method=method, evaluation=evaluation,
                      full_output=True)

    (y0, fast), taken = call(), list(jvp_fused)
    with monkeypatch.context() as m:
        m.setattr(nominal, "_fused_estimate", lambda *a: None)
        y1, slow = call()
    assert len(taken) == 1 and taken[0] is not None  # the fused estimate decided it
    for name in ("value", "error", "step", "status"):
        assert type(getattr(fast, name)) is type(getattr(slow, name)), name
    same(lb, fast, slow)
    np.testing.assert_array_equal(lb.to_numpy(y0), lb.to_numpy(y1))


def test_jvp_non_finite_goes_to_the_engine(jvp_fused: list[Any]) -> None:
    """A value that is not finite: the engine's estimate and statuses (NON_FINITE)."""
    x = np.array([1.0, 0.0])
    with np.errstate(all="ignore"):
        _, r = nd.jvp(lambda v: np.log(v), (x,), (np.ones(2),), full_output=True)
    assert jvp_fused == [None] and r.status[1] != 0


@pytest.mark.parametrize("method", ["central", "forward"])
def test_empty_output_is_the_engines(method: str, monkeypatch: pytest.MonkeyPatch,
                                     fused: list[Any]) -> None:
    """f with no outputs: nothing to reduce over, the engine's (0, n) fields."""
    x = np.array([1.0, 2.0])

    def call() -> Any:
        return nd.jacobian(lambda v: v[..., :0], x, method=method, evaluation="batched",
                           full_output=True)

    same(_FACTORIES["numpy"](), call(), engine(monkeypatch, call))
    assert len(fused) == 1 and fused[0] is not None


@pytest.mark.parametrize("shape", [(5, 3), (40, 30)])
def test_probe_test_dense_or_gathered_agree(shape: tuple[int, int],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``_may_rejudge`` runs its test on every entry (small or mostly failing arrays) or
    on the gathered failing ones: the same elementwise arithmetic, the same answer."""
    rng = np.random.default_rng(7)
    n, m = shape
    answers = set()
    for trial in range(60):
        f0_row = rng.standard_normal((1, m))
        y = f0_row[:, None, :] + (rng.standard_normal((n, 2, m))
                                  * 10.0 ** rng.uniform(-12, -4, (n, 2, m)))
        h = 10.0 ** rng.uniform(-4, -2, (n, 1))
        s = h / 6e-6
        mag = np.abs(rng.standard_normal((n, m)))
        scale = mag.max(axis=0, keepdims=True) * 10.0 ** rng.uniform(0, 6)
        fails = rng.random((n, m)) < (0.02, 0.3, 1.0)[trial % 3]
        got = []
        for dense, share in ((10 ** 9, 1), (0, 0)):  # every entry, then the gathered ones
            monkeypatch.setattr(lane_estimate, "_DENSE_PROBE", dense)
            monkeypatch.setattr(lane_estimate, "_DENSE_SHARE", share)
            with np.errstate(all="ignore"):
                got.append(lane_estimate._may_rejudge(y, f0_row, h, s, mag, scale, fails))
        assert got[0] == got[1]
        answers.add(got[0])
    assert answers == {True, False}  # both outcomes were exercised
