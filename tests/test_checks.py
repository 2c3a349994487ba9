"""gradcheck, gradgradcheck, cross_check and their diagnostics."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import numdiffx as nd

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------------------------
# custom autograd Functions, right and wrong
# ---------------------------------------------------------------------------------------
class Cube(torch.autograd.Function):
    """x**3 with a differentiable backward: first and second derivatives are right."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return CubeGrad.apply(x, g)


class CubeGrad(torch.autograd.Function):
    """(x, g) -> 3 x**2 g, itself with a hand-written backward (the double backward)."""

    @staticmethod
    def forward(ctx: Any, x: Any, g: Any) -> Any:
        ctx.save_for_backward(x, g)
        return 3 * x**2 * g

    @staticmethod
    def backward(ctx: Any, gg: Any) -> Any:
        x, g = ctx.saved_tensors
        return gg * 6 * x * g, gg * 3 * x**2


class CubeBadDouble(Cube):
    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return CubeGradBad.apply(x, g)


class CubeGradBad(CubeGrad):
    @staticmethod
    def backward(ctx: Any, gg: Any) -> Any:
        x, g = ctx.saved_tensors
        return gg * 5 * x * g, gg * 3 * x**2  # d/dx of 3 x^2 g is 6 x g


class CubeBadBackward(Cube):
    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * 2 * x**2


class CubeZeroBackward(Cube):
    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return torch.zeros_like(g)


_SAVED = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)


class CubeOfSaved(Cube):
    """Forward uses a stored tensor instead of its input; backward claims 3 x**2."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return _SAVED.to(x.dtype) ** 3

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * 3 * x**2


def _x(dtype: Any = None, values: Any = (0.5, -1.2, 2.0)) -> Any:
    return torch.tensor(values, dtype=dtype or torch.float64, requires_grad=True)


def _mlp(dtype: Any) -> tuple[Any, tuple[Any, ...]]:
    gen = torch.Generator().manual_seed(0)
    w1 = torch.randn(8, 5, generator=gen, dtype=dtype, requires_grad=True)
    w2 = torch.randn(3, 8, generator=gen, dtype=dtype, requires_grad=True)
    x = torch.randn(4, 5, generator=gen, dtype=dtype, requires_grad=True)
    return (lambda x, w1, w2: torch.tanh(x @ w1.T) @ w2.T), (x, w1, w2)


# ---------------------------------------------------------------------------------------
# correct functions pass
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fast_mode", [False, True])
def test_correct_custom_function_passes(dtype: str, fast_mode: bool) -> None:
    x = _x(getattr(torch, dtype))
    assert nd.gradcheck(Cube.apply, (x,), fast_mode=fast_mode) is True
    assert nd.gradgradcheck(Cube.apply, (x,), fast_mode=fast_mode) is True
    assert nd.gradgradcheck(lambda x: Cube.apply(x).sum(), (x,)) is True  # HVP too


def test_float32_passes_where_torch_default_eps_fails() -> None:
    f, inputs = _mlp(torch.float32)
    assert nd.gradcheck(f, inputs) is True
    assert nd.gradcheck(f, inputs, fast_mode=True) is True
    with pytest.warns(UserWarning, match="not a double precision"), pytest.raises(
            RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(f, inputs, eps=1e-6)


def test_inputs_not_mutated_and_not_requiring_grad_changes() -> None:
    x = _x()
    before = x.detach().clone()
    nd.gradcheck(Cube.apply, (x,))
    nd.gradgradcheck(Cube.apply, (x,))
    assert torch.equal(x.detach(), before) and x.grad is None and x.requires_grad


def test_integer_outputs_are_skipped() -> None:
    x = _x()
    assert nd.gradcheck(lambda x: (Cube.apply(x), torch.argmax(x)), (x,)) is True
    with pytest.raises(nd.GradcheckError, match=r"left out: out\[1\] has dtype torch.int64"):
        nd.gradcheck(lambda x: (CubeBadBackward.apply(x), torch.argmax(x)), (x,))
    text = nd.explain_perturbation(lambda x: (x * 2, torch.argmax(x)), (x,))
    assert re.search(r"Left out: out\[1\] has dtype torch.int64: not differentiable", text)


def test_multiple_inputs_and_outputs() -> None:
    f, inputs = _mlp(torch.float64)
    assert nd.gradcheck(lambda x, w1, w2: (f(x, w1, w2), (x * x).sum()), inputs)


# ---------------------------------------------------------------------------------------
# wrong functions fail with the specific diagnosis
# ---------------------------------------------------------------------------------------
WRONG = [
    (CubeBadBackward.apply, r"0\.666667 times the true derivative everywhere"),
    (CubeZeroBackward.apply, r"the backward is zero where f changes"),
    (lambda x: Cube.apply(x).detach(), r"declares out\[0\] non-differentiable"),
    (CubeOfSaved.apply, r"the output does not depend on the perturbed input"),
]


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize(("f", "match"), WRONG)
def test_wrong_backward_is_diagnosed(f: Any, match: str, fast_mode: bool) -> None:
    with pytest.raises(nd.GradcheckError, match=match) as info:
        nd.gradcheck(f, (_x(),), fast_mode=fast_mode)
    first, *rest = str(info.value).splitlines()
    assert re.match(r"d out\[0\]\[\d\] / d in\[0\]\[\d\]: numerical ", first)
    assert re.search(match, first)
    if "declares" not in match:  # a full comparison: step, tolerance and worst elements
        assert any(line.startswith("  step: h = ") for line in rest)
        assert ("fast mode (seed=0)" in str(info.value)) == fast_mode


def test_wrong_double_backward_is_diagnosed() -> None:
    assert nd.gradcheck(CubeBadDouble.apply, (_x(),))  # first order is right
    with pytest.raises(nd.GradcheckError,
                       match=r"^d grad in\[0\]\[\d\] / d in\[0\]\[\d\]: .*the double backward is "
                             r"0\.833333 times"):
        nd.gradgradcheck(CubeBadDouble.apply, (_x(),))


def test_hessian_vector_check_compares_with_fd_error() -> None:
    from numdiffx.checks._gradgrad import _hvp_check
    from numdiffx.checks._problem import build_problem

    p = build_problem(lambda x: (x**3).sum(), (_x(),), "auto")
    _hvp_check(p, p.outputs[0], None, None, None, seed=3)  # right: passes
    true_hvp = p.reference.hvp
    p.reference.hvp = lambda k, v: {i: h * 1.001 for i, h in true_hvp(k, v).items()}
    with pytest.raises(nd.GradcheckError, match=r"Hessian-vector product, seed=3\): numerical "
                                                r".*the double backward is wrong"):
        _hvp_check(p, p.outputs[0], None, None, None, seed=3)


def test_gradgradcheck_non_differentiable_backward() -> None:
    class OnceOnly(Cube):
        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return (3 * x.detach() ** 2 * g.detach())

    with pytest.raises(nd.GradcheckError, match=r"declares grad in\[0\] non-differentiable"):
        nd.gradgradcheck(OnceOnly.apply, (_x(),))


def test_step_below_input_resolution() -> None:
    x = _x(torch.float32, (1000.0, 2.0))
    with pytest.raises(nd.GradcheckError,
                       match=r"step below the input's resolution: in\[0\]\[0\] is 1000 "
                             r"in torch.float32.*eps=None"):
        nd.gradcheck(torch.sqrt, (x,), eps=1e-6)
    assert nd.gradcheck(torch.sqrt, (x,))  # the auto step works


def test_step_below_output_resolution() -> None:
    x = _x(torch.float32, (1.0, 2.0))
    with pytest.raises(nd.GradcheckError,
                       match=r"numerical 0 vs analytical 1 .*step below the output's resolution"
                             r".*Use eps=None"):
        nd.gradcheck(lambda x: x + 300.0, (x,), eps=1e-6)
    assert nd.gradcheck(lambda x: x + 300.0, (x,))
    assert nd.gradcheck(lambda x: x + 1e4, (x,))  # round-off is in the FD error estimate


def test_kink_inside_stencil() -> None:
    x = _x(values=(0.0, 1.0))
    with pytest.raises(nd.GradcheckError, match=r"a kink or jump inside the step"):
        nd.gradcheck(torch.relu, (x,))
    with pytest.raises(nd.GradcheckError, match=r"kink"):
        nd.gradcheck(torch.abs, (_x(values=(1e-6, 1.0)),))


def test_non_determinism() -> None:
    gen = torch.Generator().manual_seed(1)
    with pytest.raises(nd.GradcheckError, match=r"f is non-deterministic"):
        nd.gradcheck(lambda x: x * torch.rand((), generator=gen, dtype=x.dtype), (_x(),))


def test_mutating_f_and_shape_change_rejected() -> None:
    def mutates(x: Any) -> Any:
        x.mul_(2.0)
        return x * 1

    with pytest.raises(RuntimeError, match=r"leaf Variable that requires grad"):  # torch's
        nd.gradcheck(mutates, (_x(),))
    a = np.array([0.5, 1.0])
    with pytest.raises(nd.GradcheckError, match=r"f modified in\[0\] in place"):
        nd.gradcheck(lambda x: np.multiply(x, 2, out=x), (a,), reference=lambda x: 2 * np.eye(2))
    assert np.array_equal(a, [0.5, 1.0])
    with pytest.raises(nd.GradcheckError, match=r"changed from shape \(2,\) float64 at x to "
                                                r"shape \(3,\) float64 when in\[0\] was"):
        nd.gradcheck(lambda x: x[x > 0.5000001], (_x(values=(0.5, 1.0, 2.0)),), eps=1e-6)


def test_raise_exception_false_returns_false() -> None:
    assert nd.gradcheck(CubeBadBackward.apply, (_x(),), raise_exception=False) is False


# ---------------------------------------------------------------------------------------
# jax and numpy references
# ---------------------------------------------------------------------------------------
def test_jax_custom_vjp_wrong_rule_caught() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    @jax.custom_vjp
    def f(x: Any) -> Any:
        return jnp.sin(x) * x

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * jnp.cos(x) * x,))  # misses sin(x)
    with jax.enable_x64(True):
        x = jnp.array([0.3, 1.1])
        assert nd.gradcheck(lambda x: jnp.sin(x) * x, (x,), fast_mode=True)
        assert nd.gradgradcheck(lambda x: jnp.sum(jnp.sin(x) * x), (x,))
        for fast in (False, True):
            with pytest.raises(nd.GradcheckError, match=r"likely cause: the backward is wrong"):
                nd.gradcheck(f, (x,), fast_mode=fast)


def test_numpy_wrong_jacobian_callable_caught() -> None:
    x = np.array([0.5, 1.0, 2.0])
    assert nd.gradcheck(np.sin, (x,), reference=lambda x: np.diag(np.cos(x)))
    with pytest.raises(nd.GradcheckError, match=r"transpose of the true Jacobian"):
        a = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [4.0, 0.0, 1.0]])
        nd.gradcheck(lambda x: a @ x, (x,), reference=lambda x: a.T)
    with pytest.raises(ValueError, match=r"reference='auto' needs torch or jax inputs"):
        nd.gradcheck(np.sin, (x,))
    with pytest.raises(ValueError, match=r"expected out.shape \+ in.shape"):
        nd.gradcheck(np.sin, (x,), reference=lambda x: np.cos(x))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"f must be callable"):
        nd.gradcheck(np.ones(2), (np.ones(2),))
    with pytest.raises(ValueError, match=r"nondet_tol must be a finite number >= 0"):
        nd.gradcheck(np.sin, (np.ones(2),), reference=lambda x: np.eye(2), nondet_tol=-1.0)
    with pytest.raises(ValueError, match=r"atol must be None or a finite number >= 0"):
        nd.gradcheck(np.sin, (np.ones(2),), reference=lambda x: np.eye(2), atol=-1.0)
    with pytest.raises(TypeError, match=r"fast_mode must be True or False"):
        nd.gradcheck(np.sin, (np.ones(2),), reference=lambda x: np.eye(2), fast_mode="yes")
    with pytest.raises(ValueError, match=r"first derivatives from real finite-difference"):
        nd.gradcheck(np.sin, (np.ones(2),), reference=lambda x: np.eye(2),
                     method="complex_step")
    with pytest.raises(TypeError, match=r"at least one floating-point or complex array"):
        nd.gradcheck(np.sin, (np.arange(3),), reference=lambda x: np.eye(3))


# ---------------------------------------------------------------------------------------
# fast vs slow, reproducibility
# ---------------------------------------------------------------------------------------
TABLE = [
    (Cube.apply, (0.5, -1.2, 2.0)),
    (CubeBadBackward.apply, (0.5, -1.2, 2.0)),
    (CubeZeroBackward.apply, (0.5, -1.2, 2.0)),
    (torch.tanh, (0.1, 0.2, 3.0)),
    (torch.relu, (0.0, 1.0)),
    (lambda x: torch.sort(x).values, (0.3, 0.1, 0.2)),
    (lambda x: x.detach() * 2, (1.0, 2.0)),
    (lambda x: torch.cumsum(x, 0) * x, (1.0, -2.0, 0.5)),
]


@pytest.mark.parametrize(("f", "values"), TABLE)
def test_fast_and_slow_agree(f: Any, values: tuple[float, ...]) -> None:
    for dtype in (torch.float64, torch.float32):
        x = _x(dtype, values)
        slow = nd.gradcheck(f, (x,), raise_exception=False)
        fast = nd.gradcheck(f, (x,), fast_mode=True, raise_exception=False)
        assert slow == fast


def test_reproducible_with_seed() -> None:
    def message(seed: int) -> str:
        with pytest.raises(nd.GradcheckError) as info:
            nd.gradgradcheck(CubeBadDouble.apply, (_x(),), fast_mode=True, seed=seed)
        return str(info.value)

    assert message(5) == message(5)
    assert message(5) != message(6)  # grad_outputs and u, v differ


# ---------------------------------------------------------------------------------------
# explanations
# ---------------------------------------------------------------------------------------
def test_explain_perturbation_lists_calls_and_entries(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    text = nd.explain_perturbation(lambda x: x**2, (np.array([3.0, 1.0]),), step=1e-3)
    assert "What is perturbed: the checked inputs (in[0]), one element at a time" in text
    assert "in[0][0] = 3 - 1*h = 2.999" in text and "in[0][1] = 1 + 1*h = 1.001" in text
    assert re.search(r"out\[0\]\[0\] / in\[0\]\[0\]: \(-0\.5\*8\.994001 \+0\.5\*9\.006001\) "
                     r"/ 0\.001 = 6", text)
    nd.gradgradcheck(Cube.apply, (_x(values=(0.5,)),), explain=True)
    out = capsys.readouterr().out
    assert "What is perturbed: the checked inputs (in[0], grad_outputs[0])" in out
    assert "G(inputs, grad_outputs)" in out
    with pytest.raises(ValueError, match=r"describes real stencils"):
        nd.explain_perturbation(np.sin, (np.ones(1),), method="complex_step")


# ---------------------------------------------------------------------------------------
# cross_check
# ---------------------------------------------------------------------------------------
W = np.array([[0.5, -1.0, 0.2], [2.0, 0.3, -0.7]])


def _model_np(x: Any) -> Any:
    return np.tanh(W @ x) * x[:2]


def _model_torch(x: Any) -> Any:
    return torch.tanh(torch.as_tensor(W) @ x) * x[:2]


def _model_torch_wrong(x: Any) -> Any:
    return torch.sigmoid(torch.as_tensor(W) @ x) * 2 * x[:2] - x[:2]  # tanh(z/2), not tanh(z)


def test_cross_check_agrees_and_finds_a_wrong_port() -> None:
    x = np.array([0.2, -0.4, 0.9])
    funcs: dict[str, Any] = {"numpy": _model_np, "torch": _model_torch}
    try:
        import jax.numpy as jnp

        funcs["jax"] = lambda x: jnp.tanh(jnp.asarray(W) @ x) * x[:2]
    except ImportError:  # pragma: no cover - jax is optional
        pass
    report = nd.cross_check(funcs, x)
    assert report.passed and "torch/autodiff" in str(report)
    with pytest.raises(nd.GradcheckError,
                       match=r"numpy vs torch_port \(value\)(.|\n)*different VALUES"):
        nd.cross_check({"numpy": _model_np, "torch_port": _model_torch_wrong}, x)
    with pytest.raises(ValueError, match=r"must start with one of"):
        nd.cross_check({"numpy": _model_np, "tf": _model_np}, x)


# ---------------------------------------------------------------------------------------
# the docs page runs, and importing numdiffx imports no framework
# ---------------------------------------------------------------------------------------
def test_docs_perturbation_code_blocks_run() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "perturbation.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert blocks
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)  # noqa: S102 - our own docs


def test_import_does_not_import_frameworks() -> None:
    code = "import sys, numdiffx; print('torch' in sys.modules or 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


def test_numpy_several_inputs_and_outputs_with_callable_reference() -> None:
    a, b = np.array([0.3, 0.7]), np.array([1.5])

    def f(a: Any, b: Any) -> Any:
        return a * b, np.sum(a**2)

    def claimed(wrong: float) -> Any:
        return lambda a, b: ((np.diag(b.repeat(2)), a.reshape(2, 1)), (2 * a, np.full(1, wrong)))

    for fast in (False, True):
        assert nd.gradcheck(f, (a, b), reference=claimed(0.0), fast_mode=fast)
        with pytest.raises(nd.GradcheckError,
                           match=r"^d out\[1\] / d in\[1\]\[0\]: numerical 0 vs analytical 1 .*does "
                                 r"not depend on the perturbed input"):
            nd.gradcheck(f, (a, b), reference=claimed(1.0), fast_mode=fast)


def test_default_tolerances_follow_dtype_and_order() -> None:
    from numdiffx.checks import default_tolerances

    atol64, rtol64 = default_tolerances("float64")
    atol32, _ = default_tolerances("float32")
    assert atol64 == rtol64 == pytest.approx(2.0**8 * np.finfo(np.float64).eps ** (2 / 3))
    assert atol32 == pytest.approx(2.0**8 * np.finfo(np.float32).eps ** (2 / 3))
    assert default_tolerances("float64", nd.central(order=4))[0] < atol64
