"""nd.gradcheck / nd.gradgradcheck as drop-ins for torch's: keywords, inputs, outputs."""

from __future__ import annotations

import enum
import re
from typing import Any

import numpy as np
import pytest

import numdiffx as nd

torch = pytest.importorskip("torch")


def _x(*values: float, dtype: Any = None) -> Any:
    return torch.tensor(values or (0.5, -1.2, 2.0), dtype=dtype or torch.float64,
                        requires_grad=True)


class Exp(torch.autograd.Function):
    """exp with a backward and a forward-mode rule (jvp); ``SCALE`` breaks one of them."""

    BACK = 1.0
    FWD = 1.0

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        y = x.exp()
        ctx.save_for_backward(y)
        ctx.save_for_forward(y)
        return y

    @classmethod
    def backward(cls, ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return g * y * cls.BACK

    @classmethod
    def jvp(cls, ctx: Any, t: Any) -> Any:
        (y,) = ctx.saved_tensors
        return t * y * cls.FWD


class ExpWrongJvp(Exp):
    FWD = 1.01


class ExpWrongBackward(Exp):
    BACK = 1.001


TORCH_KEYWORDS = dict(eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
                      check_undefined_grad=True, check_grad_dtypes=False,
                      check_batched_grad=False, check_batched_forward_grad=False,
                      check_forward_ad=False, check_backward_ad=True, fast_mode=False,
                      masked=None)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_every_torch_keyword_is_accepted_with_torch_meaning(fast_mode: bool) -> None:
    kw = dict(TORCH_KEYWORDS, fast_mode=fast_mode)
    x = _x()
    assert torch.autograd.gradcheck(Exp.apply, (x,), **kw)
    assert nd.gradcheck(Exp.apply, (x,), **kw)
    gg = dict(kw, gen_non_contig_grad_outputs=True, check_fwd_over_rev=False,
              check_rev_over_rev=True, masked=False)
    for key in ("check_forward_ad", "check_backward_ad", "check_batched_forward_grad"):
        gg.pop(key)
    f = lambda x: x.sin() * x  # noqa: E731
    assert torch.autograd.gradgradcheck(f, (x,), **gg)
    assert nd.gradgradcheck(f, (x,), **gg)


def test_eps_is_the_step_and_the_perturbation_never_exceeds_it() -> None:
    x0 = torch.tensor([0.3, 0.7, 1.1], dtype=torch.float64)
    seen = []

    def f(x: Any) -> Any:
        seen.append(float((x.detach() - x0).abs().max()))
        # f's own tolerance: the input stays within eps (up to the rounding of x + eps)
        assert seen[-1] <= 1e-6 * (1 + 1e-8)
        return x.sin()

    for fast in (False, True):
        assert nd.gradcheck(f, (x0.clone().requires_grad_(),), eps=1e-6, fast_mode=fast)
    assert 0 < max(seen) <= 1e-6 * (1 + 1e-8)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_check_forward_ad_checks_the_jvp_rule(fast_mode: bool) -> None:
    x = _x()
    assert nd.gradcheck(Exp.apply, (x,), check_forward_ad=True, fast_mode=fast_mode)
    assert nd.gradcheck(Exp.apply, (x,), check_forward_ad=True, check_backward_ad=False,
                        check_batched_forward_grad=True, check_undefined_grad=False,
                        fast_mode=fast_mode)
    with pytest.raises(nd.GradcheckError, match=r"forward-mode AD \(jvp\)"):
        nd.gradcheck(ExpWrongJvp.apply, (x,), check_forward_ad=True, fast_mode=fast_mode)
    assert nd.gradcheck(ExpWrongJvp.apply, (x,), fast_mode=fast_mode)  # backward is right


def test_keyword_rules_as_torch() -> None:
    with pytest.raises(ValueError, match=r"check_forward_ad and check_backward_ad"):
        nd.gradcheck(Exp.apply, (_x(),), check_backward_ad=False)
    with pytest.raises(ValueError, match=r"check_batched_grad=True needs"):
        nd.gradcheck(Exp.apply, (_x(),), check_backward_ad=False, check_forward_ad=True,
                     check_batched_grad=True)
    with pytest.raises(ValueError, match=r"check_undefined_grad=True needs check_rev_over_rev"):
        nd.gradgradcheck(Exp.apply, (_x(),), check_rev_over_rev=False, check_fwd_over_rev=True)
    with pytest.raises(ValueError, match=r"eps must be None or a finite number > 0"):
        nd.gradcheck(Exp.apply, (_x(),), eps=0.0)
    with pytest.raises(ValueError, match=r"either eps .* or step"):
        nd.gradcheck(Exp.apply, (_x(),), eps=1e-6, step=1e-5)


class NotReentrant(torch.autograd.Function):
    calls = 0

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return x * 2

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        NotReentrant.calls += 1
        return g * (2 + 1e-9 * NotReentrant.calls)


def test_nondet_tol_is_about_the_backward_as_in_torch() -> None:
    for fast in (False, True):
        with pytest.raises(nd.GradcheckError, match=r"the backward is not reentrant"):
            nd.gradcheck(NotReentrant.apply, (_x(),), fast_mode=fast)
        assert nd.gradcheck(NotReentrant.apply, (_x(),), fast_mode=fast, nondet_tol=1e-6)


def test_check_grad_dtypes_and_undefined_grad_and_batched_grad() -> None:
    x = _x()
    assert nd.gradcheck(Exp.apply, (x,), check_grad_dtypes=True)

    class NoUndefined(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 2

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2 + 1.0 if g is not None else None

    ok = torch.autograd.gradcheck(NoUndefined.apply, (x,), raise_exception=False)
    assert nd.gradcheck(NoUndefined.apply, (x,), raise_exception=False) == ok
    assert nd.gradcheck(torch.sin, (x,), check_batched_grad=True)
    assert nd.gradcheck(torch.sin, (x,), check_batched_grad=True, fast_mode=True)


# ---------------------------------------------------------------------------------------
# torch's contract for inputs
# ---------------------------------------------------------------------------------------
class Mode(enum.Enum):
    A = 1


def test_non_tensor_inputs_reach_f_untouched_and_are_never_perturbed() -> None:
    img = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(4, dtype=torch.float64)  # no requires_grad: passed through
    module = torch.nn.Identity()
    calls = []

    table = np.array([1.0, 2.0, 3.0, 4.0])  # a numpy array among torch inputs: passed through

    def f(img: Any, alpha: float, n: int, flag: bool, pair: tuple[int, int], mode: Mode,
          opts: dict[str, float], mod: Any, w: Any, table: Any) -> Any:
        calls.append((alpha, n, flag, pair, mode, opts, mod, w, table))
        assert isinstance(alpha, float) and isinstance(n, int) and isinstance(flag, bool)
        return mod(img * alpha + n * opts["k"]).sum(dim=1) * w * torch.as_tensor(table)

    args = (img, 1.5, 2, True, (1, 2), Mode.A, {"k": 0.5}, module, weight, table)
    for fast in (False, True):
        assert torch.autograd.gradcheck(f, args, fast_mode=fast)
        assert nd.gradcheck(f, args, fast_mode=fast)
        assert nd.gradgradcheck(f, args, fast_mode=fast)
    assert all(c[-1] is table and c[-2] is weight and c[-3] is module and
               c[1:6] == (2, True, (1, 2), Mode.A, {"k": 0.5}) for c in calls)
    assert weight.grad is None and img.grad is None


def test_outputs_without_grad_are_left_out_or_checked_against_zero() -> None:
    x = _x()

    def otsu_like(x: Any) -> Any:
        return x * 2, torch.tensor(0.5, dtype=x.dtype), x.detach().max()

    assert nd.gradcheck(otsu_like, (x,))
    assert nd.gradcheck(otsu_like, (x,), fast_mode=True)
    with pytest.raises(nd.GradcheckError, match=r"declares out\[2\] non-differentiable"):
        nd.gradcheck(otsu_like, (x,), check_nondiff_outputs=True)
    message = ""
    try:
        nd.gradcheck(lambda x: (x * 2, x.detach() ** 2), (x,), check_nondiff_outputs=True)
    except nd.GradcheckError as err:
        message = str(err)
    assert "left out" not in message.splitlines()[0]


# ---------------------------------------------------------------------------------------
# the message
# ---------------------------------------------------------------------------------------
def test_first_line_carries_the_verdict() -> None:
    with pytest.raises(nd.GradcheckError) as info:
        nd.gradcheck(ExpWrongBackward.apply, (_x(),))
    first = str(info.value).splitlines()[0]
    assert re.fullmatch(r"d out\[0\]\[\d\] / d in\[0\]\[\d\]: numerical [-\d.e+]+ vs analytical "
                        r"[-\d.e+]+ \(rel 0\.001\); likely cause: the backward is 1\.001 times "
                        r"the true derivative everywhere.*", first), first
    assert "dominant" in str(info.value)


def test_torch_rtol_lets_a_small_bug_through_numdiffx_default_does_not() -> None:
    x = _x()
    assert torch.autograd.gradcheck(ExpWrongBackward.apply, (x,))
    for fast in (False, True):
        assert not nd.gradcheck(ExpWrongBackward.apply, (x,), fast_mode=fast,
                                raise_exception=False)


def test_fast_mode_costs_two_evaluations_not_a_jacobian() -> None:
    calls = []
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    img = torch.randn(1, 3, 16, 16, dtype=torch.float64, requires_grad=True)

    def net(img: Any, w: Any) -> Any:
        calls.append(1)
        return torch.tanh(torch.nn.functional.conv2d(img, w, padding=1))

    assert nd.gradcheck(net, (img, w), fast_mode=True, check_undefined_grad=False)
    assert len(calls) == 3  # one forward with autograd, two for the numerical J u


def test_cuda_tensors_stay_on_their_device() -> None:
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here")
    x = torch.randn(4, dtype=torch.float64, device="cuda", requires_grad=True)
    z = torch.randn(4, dtype=torch.complex128, device="cuda", requires_grad=True)
    for fast in (False, True):
        assert nd.gradcheck(lambda x: x.sin() * x, (x,), fast_mode=fast)
        assert nd.gradcheck(torch.fft.fft, (z,), fast_mode=fast)
        assert nd.gradgradcheck(lambda x: x.sin() * x, (x,), fast_mode=fast)
        assert not nd.gradcheck(ExpWrongBackward.apply, (x,), fast_mode=fast,
                                raise_exception=False)
