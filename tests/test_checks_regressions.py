"""Every reproducer of the gradient-check issues (18: false alarms; 23: a real suite) as a test.

Each test names the item it guards. Correct functions must pass (slow and fast mode);
where a diagnosis was wrong, the message must now name the right cause.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import numdiffx as nd

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(*values: float, dtype: Any = None, shape: tuple[int, ...] | None = None) -> Any:
    x = torch.tensor(values, dtype=dtype or torch.float64)
    return (x.reshape(shape) if shape else x).requires_grad_(True)


def _rand(*shape: int, seed: int = 0, dtype: Any = None) -> Any:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype or torch.float64).requires_grad_(True)


def _both(f: Any, inputs: tuple[Any, ...], **kw: Any) -> None:
    for fast in (False, True):
        assert nd.gradcheck(f, inputs, fast_mode=fast, **kw), fast


# ---------------------------------------------------------------------------------------
# issue 18
# ---------------------------------------------------------------------------------------
def test_18_1_complex_outputs_are_checked_real_and_imaginary_parts() -> None:
    x = _rand(6)
    z = torch.randn(6, dtype=torch.complex128, requires_grad=True)
    for f, inp in ((torch.fft.fft, x), (torch.fft.fft, z), (torch.fft.rfft, x),
                   (lambda z: torch.fft.irfft(z, n=10), z[:5].detach().requires_grad_())):
        _both(f, (inp,))
        assert nd.gradgradcheck(f, (inp,))

    class WrongImag(torch.autograd.Function):  # right real part, conjugated imaginary part
        @staticmethod
        def forward(ctx: Any, z: Any) -> Any:
            return z * (1 + 2j)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * (1 + 2j)  # torch's convention needs conj(1 + 2j)

    for fast in (False, True):
        with pytest.raises(nd.GradcheckError, match=r"(Re|Im) out\[0\]"):
            nd.gradcheck(WrongImag.apply, (z,), fast_mode=fast)


def test_18_2_conjugate_bit_zero_tensor_and_zero_size_inputs() -> None:
    z = torch.randn(5, dtype=torch.complex128, requires_grad=True)
    _both(torch.fft.ifft, (z,))
    _both(torch.conj, (z,))
    _both(torch.sgn, (_rand(4),))  # its backward returns a ZeroTensor for real inputs
    _both(torch.mm, (_rand(0, 3), _rand(3, 2, seed=1)))
    assert nd.gradgradcheck(torch.mm, (_rand(0, 3), _rand(3, 2, seed=1)))


POLES = [
    ("digamma at -1.97", torch.special.digamma, (-1.97,)),
    ("tan at 1.5", torch.tan, (1.5,)),
    ("logit near 1", torch.logit, (0.9999,)),
    ("polygamma(2) at -1.97", lambda x: torch.polygamma(2, x), (-1.97,)),
    ("lgamma at -2.99", torch.lgamma, (-2.99,)),
    ("erfcx at -5", torch.special.erfcx, (-5.0,)),
]


@pytest.mark.parametrize(("name", "f", "values"), POLES, ids=[p[0] for p in POLES])
def test_18_3_no_false_alarm_near_poles_and_steep_regions(name: str, f: Any,
                                                          values: tuple[float]) -> None:
    x = _t(*values)
    _both(f, (x,))
    assert nd.gradgradcheck(f, (x,))
    assert nd.gradcheck(f, (x,), step=nd.steps.adaptive())


def test_18_3_matrix_functions_and_a_wrong_rule_still_caught_there() -> None:
    a = _rand(4, 4, seed=3)
    with torch.no_grad():
        a.mul_(2.0)
    _both(torch.linalg.matrix_exp, (a,))
    _both(torch.linalg.pinv, (_rand(3, 5, seed=4),))

    class TanTimes(torch.autograd.Function):  # tan with a 0.1% error in its derivative
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x.tan()

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return g / x.cos() ** 2 * 1.001

    with pytest.raises(nd.GradcheckError, match=r"1\.001 times"):
        nd.gradcheck(TanTimes.apply, (_t(1.5),))


def test_18_3_adaptive_steps_messages_are_honest() -> None:
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x.exp()

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return g * x.exp() * 1.01

    with pytest.raises(nd.GradcheckError) as info:
        nd.gradcheck(Wrong.apply, (_t(0.3, 1.2),), step=nd.steps.adaptive())
    text = str(info.value)
    assert "worst elements" in text and "out[0][1] / in[0][1]" in text
    assert "mismatch 0" not in text and "float64" not in text.split("step:")[0]


def test_18_4_nondet_tol_compares_like_with_like() -> None:
    a = _rand(5, 5, seed=7)
    _both(torch.linalg.svdvals, (a,), nondet_tol=0.0)


def test_18_5_non_differentiable_outputs_are_left_out() -> None:
    x = _rand(2, 3)
    w = torch.ones(3, dtype=torch.float64)
    _both(lambda x: torch.native_layer_norm(x, (3,), None, None, 1e-5), (x,))
    _both(lambda x: torch.native_batch_norm(x, w, None, torch.zeros(3, dtype=x.dtype),
                                            torch.ones(3, dtype=x.dtype), True, 0.1, 1e-5), (x,))


@pytest.mark.parametrize("seed", range(12))
def test_18_6_fast_mode_direction_is_joint_and_cannot_cancel(seed: int) -> None:
    class AddWrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, y: Any) -> Any:
            return x + y

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 1.1, g * 1.1

    x, y = _t(0.3, shape=()), _t(-0.8, shape=())
    assert not nd.gradcheck(AddWrong.apply, (x, y), fast_mode=True, seed=seed,
                            raise_exception=False)


def test_18_7_sixteen_bit_outputs_are_refused_clearly() -> None:
    x = _rand(3)
    for dtype in (torch.float16, torch.bfloat16):
        with pytest.raises(TypeError, match=r"out\[0\] has dtype torch\.(b)?float16: a 16-bit "
                                            r"float .* cannot tell a right gradient"):
            nd.gradcheck(lambda x, d=dtype: (x * 2).to(d), (x,))
        with pytest.raises(TypeError, match=r"in\[0\] has dtype"):
            nd.gradcheck(torch.sin, (x.detach().to(dtype).requires_grad_(),))


def test_18_8_gradgradcheck_complex_mixed_dtypes_jumps_and_poles() -> None:
    re_im = _rand(4, 2)
    assert nd.gradgradcheck(torch.view_as_complex, (re_im,))
    assert nd.gradgradcheck(torch.fft.fft, (_rand(5),), fast_mode=True)
    x64, x32 = _rand(3), _rand(3, seed=1, dtype=torch.float32)
    for fast in (False, True):
        assert nd.gradgradcheck(lambda a, b: (a.sin() * 2, b.float() * a.float()), (x64, x32),
                                fast_mode=fast)
    for f, x in ((torch.special.digamma, _t(-1.97, 0.4)), (torch.lgamma, _t(-2.99, 3.0)),
                 (lambda x: torch.special.xlogy(x, x + 2), _t(0.3, 1.4)),
                 (torch.tan, _t(1.5))):
        assert nd.gradgradcheck(lambda x, f=f: f(x).sum(), (x,))  # with the HVP check
    assert nd.gradgradcheck(lambda x: torch.linalg.vector_norm(x, 0) + (x * x).sum(),
                            (_t(0.0, 1.0),))
    target = torch.tensor([1.0, -1.0], dtype=torch.float64)
    assert nd.gradgradcheck(lambda a, b: F.cosine_embedding_loss(a, b, target),
                            (_rand(2, 3), _rand(2, 3, seed=2)))


def test_18_8_gradgradcheck_message_says_what_is_perturbed() -> None:
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return CubeGrad.apply(x, g)

    class CubeGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, g: Any) -> Any:
            ctx.save_for_backward(x, g)
            return 3 * x**2 * g

        @staticmethod
        def backward(ctx: Any, gg: Any) -> Any:
            x, g = ctx.saved_tensors
            return gg * 5 * x * g, gg * 3 * x**2  # 6 x g is right

    for f in (Cube.apply, lambda x: Cube.apply(x).sum()):  # array and scalar outputs
        with pytest.raises(nd.GradcheckError) as info:
            nd.gradgradcheck(f, (_t(0.5, -1.2),))
        text = str(info.value)
        assert text.startswith("d grad in[0]") and "the double backward is 0.833333" in text
        assert "DOUBLE BACKWARD" in text and "the inputs AND the grad_outputs (seeded" in text


def test_18_8_explain_is_consistent_for_gradgradcheck(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    nd.gradgradcheck(lambda x: x**3, (_t(0.5),), explain=True)
    out = capsys.readouterr().out
    assert "the inputs AND the grad_outputs" in out and "grad_outputs[0]" in out
    assert "nothing is added to dx" not in out


def test_18_9_diagnosis_names_the_right_cause() -> None:
    x = _t(0.3, 1.7)
    with pytest.raises(nd.GradcheckError, match=r"likely cause: f is locally constant"):
        nd.gradcheck(lambda x: x + (torch.floor(x) - x).detach(), (x,))
    with pytest.raises(nd.GradcheckError, match=r"likely cause: f is not finite at x"):
        nd.gradcheck(lambda x: x * float("nan"), (x,))
    calls = [0]

    def noisy_reference(a: Any) -> Any:
        calls[0] += 1
        return np.diag(np.cos(a)) * (1 + 1e-3 * calls[0])

    with pytest.raises(nd.GradcheckError, match=r"analytical reference is non-deterministic"):
        nd.gradcheck(np.sin, (np.array([0.2, 0.4]),), reference=noisy_reference)


# ---------------------------------------------------------------------------------------
# issue 23
# ---------------------------------------------------------------------------------------
def test_23_1_2_non_tensor_inputs() -> None:
    img = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)

    def rgb_to_rgba(img: Any, alpha: float) -> Any:
        return torch.cat([img, torch.full_like(img[:, :1], alpha)], dim=1)

    _both(rgb_to_rgba, (img, 1.0))
    _both(lambda img, size, flags: img[..., : size[0], : size[1]] * flags["g"],
          (img, (2, 3), {"g": 2.0}))


def test_23_3_eps_is_accepted() -> None:
    assert nd.gradcheck(torch.sin, (_rand(3),), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_23_4_no_false_alarms_in_steep_or_large_functions() -> None:
    p, q = _rand(2, 5), _rand(2, 5, seed=1)

    def js_divergence(p: Any, q: Any) -> Any:
        p, q = p.softmax(-1), q.softmax(-1)
        m = 0.5 * (p + q)
        return 0.5 * (F.kl_div(m.log(), p, reduction="batchmean")
                      + F.kl_div(m.log(), q, reduction="batchmean"))

    def depth_from_disparity(d: Any) -> Any:
        return 718.856 * 0.54 / d  # KITTI focal length x baseline

    def quartic_roots(c: Any) -> Any:  # the real roots of x^4 + c1 x^3 + ... via eigenvalues
        comp = torch.zeros(4, 4, dtype=c.dtype)
        comp[1:, :3] = torch.eye(3, dtype=c.dtype)
        comp = comp + torch.nn.functional.pad(-c.flip(0).reshape(4, 1), (3, 0))
        return torch.linalg.eigvals(comp).real.sort().values

    _both(js_divergence, (p, q))
    _both(depth_from_disparity, (_t(0.1043, 0.2, 1.5),))
    _both(quartic_roots, (_t(-10.0, 35.0, -50.0, 24.0),))  # roots 1, 2, 3, 4


def test_23_5_outputs_without_grad() -> None:
    img = _rand(4, 4)

    def otsu(img: Any) -> Any:
        threshold = img.detach().mean()
        return img * (img > threshold), threshold

    _both(otsu, (img,))


def test_23_6_perturbation_stays_inside_f_s_own_checks() -> None:
    corners = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)

    def cube_volume(c: Any) -> Any:
        sides = (c[1:] - c[0]).norm(dim=1)
        assert torch.allclose(sides, sides[0].expand(3), atol=1e-5), "not a cube"
        return sides.prod()

    _both(cube_volume, (corners.requires_grad_(),), eps=1e-6)
    _both(cube_volume, (corners,))  # the auto step also stays inside 1e-5 here


def test_23_7_first_line_is_the_verdict() -> None:
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 3

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2

    with pytest.raises(nd.GradcheckError) as info:
        nd.gradcheck(Wrong.apply, (_rand(2, 3),))
    first = str(info.value).splitlines()[0]
    assert first.startswith("d out[0][") and "numerical 3 vs analytical 2" in first
    assert "likely cause: the backward is 0.666667 times" in first
