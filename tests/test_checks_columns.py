"""The checker's own column loop (issue 37) and gradcheck at infinite inputs.

The loop must give numdiffx.jacobian's values and steps bit for bit (and the statuses the
checker keeps), on every backend it runs on, and hand everything else to the engine. An
input element at +-inf is not moved: its column is 0 by convention (as jax's
check_grads), so a right rule there passes and a wrong one is named.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import numdiffx as nd
import numdiffx.checks._numerical as numerical
from numdiffx._core.stencils import resolve_method
from numdiffx.checks._gradcheck import resolve_rule
from numdiffx.checks._problem import GradcheckError, build_problem


def _no_reference(*args: Any) -> None:
    return None


def _both_paths(monkeypatch: pytest.MonkeyPatch, f: Any, inputs: tuple[Any, ...],
                **kw: Any) -> tuple[Any, Any, list[bool]]:
    """numerical_jacobian with the loop, then with the engine only; which inputs took it."""
    p = build_problem(f, inputs, _no_reference)
    method = resolve_method(kw.get("method", "central"))
    rule = resolve_rule(p, kw.get("eps"), kw.get("step"), method)
    taken: list[bool] = []
    lean = numerical.lean_columns

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = lean(*args, **kwargs)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(numerical, "lean_columns", spy)
    a = numerical.numerical_jacobian(p, p.outputs, method, rule)
    monkeypatch.setattr(numerical, "lean_columns", lambda *args, **kwargs: None)
    b = numerical.numerical_jacobian(p, p.outputs, method, rule)
    return a, b, taken


def _same(a: Any, b: Any) -> None:
    for field in ("value", "error", "status"):
        got, want = getattr(a, field), getattr(b, field)
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == want[key].dtype, (field, key)
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{field} {key}")
    for i in b.steps:
        np.testing.assert_array_equal(a.steps[i], b.steps[i])


CASES = {
    "two inputs, two outputs": (
        lambda xp: lambda x, y: (xp.sin(x) * y[:, None], (x[0, :2] * y) ** 3),
        lambda xp: (xp.reshape(xp.arange(6, dtype=xp.float64), (2, 3)) / 7 - 0.2,
                    xp.asarray([0.5, -2.0], dtype=xp.float64))),
    "wide range": (lambda xp: lambda x: x ** 3 + 1e-3 * x,
                   lambda xp: (xp.asarray([1e8, -3.0, 1e-300, 0.0, 2.5e-7],
                                          dtype=xp.float64),)),
    "float32": (lambda xp: lambda x: x * x * x,
                lambda xp: (xp.asarray([0.3, -1.7, 4.0], dtype=xp.float32),)),
    "scalar output": (lambda xp: lambda x: xp.sum(x ** 2),
                      lambda xp: (xp.asarray([0.3, -1.7], dtype=xp.float64),)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kw", [{}, {"eps": 1e-6}, {"step": 1e-4}], ids=["auto", "eps", "fixed"])
def test_loop_gives_the_engines_bits(monkeypatch, xb, case, kw):
    make_f, make_x = CASES[case]
    inputs = tuple(xb.xp.asarray(a, device=xb.device) for a in make_x(xb.xp))
    a, b, taken = _both_paths(monkeypatch, make_f(xb.xp), inputs, **kw)
    _same(a, b)
    if xb.name in ("numpy", "torch"):  # the backends the loop runs on
        assert all(taken) and taken


def test_loop_torch_mixed_dtypes_and_complex_output(monkeypatch):
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float32)
    y = torch.tensor([1.5, 0.25, -0.75], dtype=torch.float64)
    a, b, taken = _both_paths(monkeypatch, lambda x, y: ((x.double() * y).cos(),
                                                         torch.exp(1j * y)), (x, y))
    _same(a, b)
    assert taken == [True, True]


def test_loop_hands_non_finite_values_to_the_engine(monkeypatch):
    x = np.array([1.0, 0.5])  # inf at x + h e_0: the engine's statuses
    a, b, taken = _both_paths(monkeypatch, lambda x: np.where(x > 1.0, np.inf, x), (x,))
    _same(a, b)
    assert taken == [False]


def test_loop_other_stencils_and_rules_take_the_engine(monkeypatch):
    x = np.array([0.4, 1.3])
    for kw in ({"method": "forward"}, {"method": nd.central(order=4)},
               {"step": nd.steps.adaptive()}):
        a, b, taken = _both_paths(monkeypatch, np.sin, (x,), **kw)
        _same(a, b)
        assert taken == [False]


def test_a_block_over_the_buffer_limit_takes_the_engine(monkeypatch):
    import numdiffx.checks._columns as columns

    monkeypatch.setattr(columns, "BUFFER_BYTES", 2 * 8 * 3 * 3 - 1)
    a, b, taken = _both_paths(monkeypatch, np.sin, (np.array([0.1, 0.2, 0.3]),))
    _same(a, b)
    assert taken == [False]


def test_output_shape_change_is_reported_as_before():
    def f(x):
        return x[x > 0.5]  # the mask changes when x[0] moves across 0.5

    with pytest.raises(GradcheckError, match="changed from shape"):
        nd.gradcheck(f, (np.array([0.5, 1.0]),), reference=lambda x: np.eye(2)[1:])


def test_f_raising_at_a_perturbed_point_keeps_the_engines_note():
    def f(x):
        if x[0] != 1.0:
            raise ValueError("boom")
        return x * 2

    with pytest.raises(ValueError, match="boom") as info:
        nd.gradcheck(f, (np.array([1.0, 2.0]),), reference=lambda x: 2 * np.eye(2))
    assert any("perturbed point" in note for note in getattr(info.value, "__notes__", []))


# ---------------------------------------------------------------------- infinite inputs
def _softplus_rule(x: np.ndarray) -> np.ndarray:
    return np.diag(1 / (1 + np.exp(-x)))


@pytest.mark.parametrize("fast_mode", [False, True])
def test_softplus_at_minus_inf_passes(xb, fast_mode):
    xp = xb.xp
    x = xb.asarray([-np.inf, 0.0, 1.5])

    def f(v):
        return xp.log(1 + xp.exp(v))

    def ref(v):
        return _softplus_rule(xb.to_numpy(v))

    assert nd.gradcheck(f, (x,), reference=ref, fast_mode=fast_mode)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_a_wrong_rule_at_minus_inf_is_named(fast_mode):
    x = np.array([-np.inf, 0.0, 1.5])

    def wrong(v):  # right everywhere except at -inf
        return _softplus_rule(v) + np.diag(np.isinf(v) * 1.0)

    with pytest.raises(GradcheckError) as info:
        nd.gradcheck(lambda v: np.logaddexp(0, v), (x,), reference=wrong, fast_mode=fast_mode)
    msg = str(info.value)
    assert msg.startswith("d out[0][0] / d in[0][0]: numerical 0 vs analytical 1")
    assert "infinite input" in msg.splitlines()[0]
    assert "Elements at +-inf (in[0][0]) are not moved" in msg


def test_torch_softplus_at_infinities():
    torch = pytest.importorskip("torch")
    sp = torch.nn.functional.softplus
    x = torch.tensor([-np.inf, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    for fast in (False, True):
        assert nd.gradcheck(sp, (x,), fast_mode=fast)
        assert nd.gradgradcheck(lambda v: sp(v).sum(), (x,), fast_mode=fast)
    one = torch.tensor([np.inf], dtype=torch.float64, requires_grad=True)
    # f(+inf) = inf: nothing to compare at that element (inf - inf), no false alarm
    assert nd.gradcheck(sp, (one,))


def test_adaptive_rule_at_minus_inf_never_calls_f_at_nan():
    seen = []

    def f(v):
        seen.append(bool(np.isnan(v).any()))
        return np.logaddexp(0, v)

    x = np.array([-np.inf, 0.5])
    assert nd.gradcheck(f, (x,), reference=_softplus_rule, step=nd.steps.adaptive())
    assert not any(seen)


def test_a_backward_writing_into_its_grad_output_does_not_spoil_the_next_rows():
    torch = pytest.importorskip("torch")

    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, g):
            out = 2 * g
            g.fill_(0.5)  # bad manners, but a backward may do it
            return out

    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    assert nd.gradcheck(Double.apply, (x,))
    assert nd.gradcheck(lambda v: Double.apply(v) + 0 * v, (x,), fast_mode=True)
