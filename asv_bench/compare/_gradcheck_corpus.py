"""A corpus of real operators with correct gradients, and the same operators with injected
backward bugs: what the gradient checks are measured on (issue 18).

Samples come from ``torch.special``, ``torch.nn.functional``, ``torch.linalg``,
``torch.fft`` (float64 and complex128) and ``jax.numpy`` / ``jax.scipy.special``; every
input is drawn from a fixed seed inside the operator's domain, some at the steep points
the issue lists (poles of digamma, tan near pi/2, logit near 1). Bugs are injected by
wrapping the operator in a custom ``autograd.Function`` (jax: ``custom_vjp``) whose
backward is the true one, altered:

- first order: gradient scaled by 1.001 or 1.1, one gradient element zeroed, the
  gradients of two same-shape inputs swapped;
- second order (torch, for gradgradcheck): the double backward scaled by 1.1, zeroed, or
  ignoring its incoming grad_output (computed as if it were all ones).

An injected bug is counted only where it changes the derivative at the sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BUGS", "DOUBLE_BUGS", "Sample", "jax_samples", "torch_samples"]

BUGS = ("scale 1.001", "scale 1.1", "zero one element", "swap two inputs")
DOUBLE_BUGS = ("double backward x1.1", "double backward zeroed", "double backward ignores gg")


@dataclass(frozen=True)
class Sample:
    """One operator at one point: ``f(*make())``; ``make`` builds fresh inputs."""

    name: str
    framework: str
    f: Callable[..., Any]
    make: Callable[[], tuple[Any, ...]]
    tags: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------
# torch
# ---------------------------------------------------------------------------------------
def _domains(torch: Any) -> dict[str, Callable[[Any, tuple[int, ...]], Any]]:
    def real(g: Any, s: tuple[int, ...]) -> Any:
        return 2 * torch.rand(s, generator=g, dtype=torch.float64) - 1 + torch.randn(
            s, generator=g, dtype=torch.float64)

    return {
        "real": real,
        "small": lambda g, s: 1.2 * torch.rand(s, generator=g, dtype=torch.float64) - 0.6,
        "pos": lambda g, s: 0.2 + 2.5 * torch.rand(s, generator=g, dtype=torch.float64),
        "unit": lambda g, s: 0.05 + 0.9 * torch.rand(s, generator=g, dtype=torch.float64),
        "sym": lambda g, s: 1.8 * torch.rand(s, generator=g, dtype=torch.float64) - 0.9,
        "gt1": lambda g, s: 1.2 + 2 * torch.rand(s, generator=g, dtype=torch.float64),
        "complex": lambda g, s: torch.randn(s, generator=g, dtype=torch.complex128),
    }


def _unary_torch(torch: Any) -> list[tuple[str, Callable[..., Any], str]]:
    sp, nnf = torch.special, torch.nn.functional
    return [
        ("special.expit", sp.expit, "real"), ("special.logit", sp.logit, "unit"),
        ("special.erf", sp.erf, "real"), ("special.erfc", sp.erfc, "real"),
        ("special.erfcx", sp.erfcx, "real"), ("special.erfinv", sp.erfinv, "sym"),
        ("special.ndtr", sp.ndtr, "real"), ("special.ndtri", sp.ndtri, "unit"),
        ("special.log_ndtr", sp.log_ndtr, "real"), ("special.digamma", sp.digamma, "pos"),
        ("special.polygamma1", lambda x: sp.polygamma(1, x), "pos"),
        ("special.polygamma2", lambda x: sp.polygamma(2, x), "pos"),
        ("special.multigammaln", lambda x: sp.multigammaln(x, 2), "gt1"),
        ("special.gammaln", sp.gammaln, "pos"), ("special.i0", sp.i0, "real"),
        ("special.i0e", sp.i0e, "real"), ("special.i1", sp.i1, "real"),
        ("special.i1e", sp.i1e, "real"), ("special.sinc", sp.sinc, "real"),
        ("special.entr", sp.entr, "pos"), ("special.log1p", sp.log1p, "pos"),
        ("special.expm1", sp.expm1, "real"), ("special.exp2", sp.exp2, "real"),
        ("special.logsumexp", lambda x: sp.logsumexp(x, 0), "real"),
        ("special.softmax", lambda x: sp.softmax(x, 0), "real"),
        ("special.log_softmax", lambda x: sp.log_softmax(x, 0), "real"),
        ("special.psi", sp.psi, "pos"), ("x*exp(x)", lambda x: x * x.exp(), "real"),
        ("tan", torch.tan, "small"), ("atanh", torch.atanh, "sym"),
        ("acosh", torch.acosh, "gt1"), ("asin", torch.asin, "sym"),
        ("rsqrt", torch.rsqrt, "pos"), ("lgamma", torch.lgamma, "pos"),
        ("nn.gelu", nnf.gelu, "real"), ("nn.gelu_tanh", lambda x: nnf.gelu(x, approximate="tanh"),
                                        "real"),
        ("nn.silu", nnf.silu, "real"), ("nn.mish", nnf.mish, "real"),
        ("nn.softplus", nnf.softplus, "real"), ("nn.elu", nnf.elu, "real"),
        ("nn.selu", nnf.selu, "real"), ("nn.celu", nnf.celu, "real"),
        ("nn.logsigmoid", nnf.logsigmoid, "real"), ("nn.tanhshrink", nnf.tanhshrink, "real"),
        ("nn.softsign", nnf.softsign, "real"), ("nn.hardswish", nnf.hardswish, "small"),
        ("nn.softmin", lambda x: nnf.softmin(x, 0), "real"),
        ("nn.normalize", lambda x: nnf.normalize(x, dim=0), "real"),
        ("nn.glu", lambda x: nnf.glu(x[:4], 0), "real"), ("nn.leaky_relu", nnf.leaky_relu, "pos"),
        ("nn.softshrink", lambda x: nnf.softshrink(x, 0.1), "gt1"),
        ("fft.fft", torch.fft.fft, "real"), ("fft.ifft", torch.fft.ifft, "complex"),
        ("fft.fft_c", torch.fft.fft, "complex"), ("fft.rfft", torch.fft.rfft, "real"),
        ("fft.irfft", torch.fft.irfft, "complex"), ("fft.hfft", torch.fft.hfft, "complex"),
        ("fft.ihfft", torch.fft.ihfft, "real"), ("fft.fftshift*x", lambda x: torch.fft.fftshift(
            x) * x, "real"),
        ("linalg.vector_norm", lambda x: torch.linalg.vector_norm(x, 3), "real"),
        ("linalg.vander", lambda x: torch.linalg.vander(x, N=3), "real"),
    ]


def _matrix_torch(torch: Any) -> list[tuple[str, Callable[..., Any], str]]:
    la, nnf = torch.linalg, torch.nn.functional

    def spd(a: Any) -> Any:
        return a @ a.mT + 3 * torch.eye(a.shape[-1], dtype=a.dtype)

    return [
        ("linalg.det", la.det, "sq"), ("linalg.slogdet", lambda a: la.slogdet(a).logabsdet, "sq"),
        ("linalg.inv", la.inv, "sq"), ("linalg.cholesky", lambda a: la.cholesky(spd(a)), "sq"),
        ("linalg.qr.Q", lambda a: la.qr(a).Q, "sq"), ("linalg.qr.R", lambda a: la.qr(a).R, "sq"),
        ("linalg.eigh.values", lambda a: la.eigh(a + a.mT).eigenvalues, "sq"),
        ("linalg.eigh.vectors^2", lambda a: la.eigh(a + a.mT).eigenvectors ** 2, "sq"),
        ("linalg.svdvals", la.svdvals, "rect"), ("linalg.svd.S", lambda a: la.svd(a).S, "rect"),
        ("linalg.norm.fro", la.norm, "rect"), ("linalg.norm.nuc", lambda a: la.norm(a, "nuc"),
                                               "rect"),
        ("linalg.norm.2", lambda a: la.matrix_norm(a, 2), "rect"),
        ("linalg.pinv", la.pinv, "rect"), ("linalg.matrix_exp", la.matrix_exp, "sq"),
        ("linalg.matrix_power", lambda a: la.matrix_power(a, 3), "sq"),
        ("linalg.cond", la.cond, "sq"), ("linalg.eigvals", la.eigvals, "sq"),
        ("linalg.eigvalsh", lambda a: la.eigvalsh(spd(a)), "sq"),
        ("linalg.inv_ex", lambda a: la.inv_ex(a).inverse, "sq"),
        ("linalg.tensorinv", lambda a: la.tensorinv(a.reshape(3, 3), 1), "sq"),
        ("linalg.householder", lambda a: la.householder_product(a, a[0, :2] * 0.5), "sq"),
        ("linalg.lu_factor", lambda a: la.lu_factor(a).LU, "sq"),
        ("fft.fft2", torch.fft.fft2, "sq"), ("fft.rfft2", torch.fft.rfft2, "sq"),
        ("fft.ifftn", torch.fft.ifftn, "sq"),
        ("nn.layer_norm", lambda a: nnf.layer_norm(a, (a.shape[-1],)), "rect"),
        ("nn.softmax2d", lambda a: a.softmax(-1) * a, "rect"),
        ("nn.pdist", nnf.pdist, "rect"),
        ("nn.local_response_norm", lambda a: nnf.local_response_norm(a[None], 2)[0], "rect"),
        ("nn.pad.reflect", lambda a: nnf.pad(a[None], (1, 1), mode="reflect")[0] ** 2, "rect"),
        ("nn.pixel_shuffle", lambda a: nnf.pixel_shuffle(a.reshape(4, 1, 2)[None] ** 3, 2),
         "rect8"),
        ("nn.avg_pool1d", lambda a: nnf.avg_pool1d(a[None] ** 2, 2)[0], "rect"),
        ("nn.max_pool1d", lambda a: nnf.max_pool1d(a[None], 2)[0] ** 2, "rect"),
        ("nn.adaptive_avg_pool1d", lambda a: nnf.adaptive_avg_pool1d(a[None].exp(), 3)[0],
         "rect"),
        ("nn.interpolate.linear", lambda a: nnf.interpolate(a[None] ** 2, scale_factor=1.5,
                                                           mode="linear")[0], "rect"),
        ("nn.interpolate.bicubic", lambda a: nnf.interpolate(
            a[None, None] ** 2, scale_factor=1.5, mode="bicubic")[0, 0], "rect"),
        ("nn.unfold", lambda a: nnf.unfold(a[None, None] ** 2, 2)[0], "rect"),
    ]


def _binary_torch(torch: Any) -> list[tuple[str, Callable[..., Any], tuple[str, ...]]]:
    sp, la, nnf = torch.special, torch.linalg, torch.nn.functional

    def loss_targets(x: Any, t: Any) -> Any:
        return nnf.cross_entropy(x[None], t.softmax(-1)[None])

    return [
        ("special.xlogy", sp.xlogy, ("pos", "pos")),
        ("special.xlog1py", sp.xlog1py, ("real", "pos")),
        ("special.zeta", lambda x, q: sp.zeta(torch.full_like(q, 2.5), q) * x, ("pos", "pos")),
        ("atan2", torch.atan2, ("real", "pos")), ("hypot", torch.hypot, ("pos", "pos")),
        ("nn.mse_loss", nnf.mse_loss, ("real", "real")),
        ("nn.smooth_l1_loss", lambda a, b: nnf.smooth_l1_loss(a, b + 3), ("real", "real")),
        ("nn.huber_loss", lambda a, b: nnf.huber_loss(a, b + 3, delta=0.5), ("real", "real")),
        ("nn.kl_div", lambda a, b: nnf.kl_div(a.log_softmax(0), b.softmax(0),
                                              reduction="sum"), ("real", "real")),
        ("nn.binary_cross_entropy", nnf.binary_cross_entropy, ("unit", "unit")),
        ("nn.bce_with_logits", nnf.binary_cross_entropy_with_logits, ("real", "unit")),
        ("nn.cross_entropy.soft", loss_targets, ("real", "real")),
        ("nn.poisson_nll_loss", nnf.poisson_nll_loss, ("real", "pos")),
        ("nn.gaussian_nll_loss", lambda a, v: nnf.gaussian_nll_loss(a, torch.full_like(a, 0.3), v),
         ("real", "pos")),
        ("nn.soft_margin_loss", lambda a, b: nnf.soft_margin_loss(a * b, b.detach().sign()),
         ("real", "real")),
        ("nn.margin_ranking_loss", lambda a, b: nnf.margin_ranking_loss(
            a, b, torch.ones_like(a), margin=10.0), ("real", "real")),
        ("nn.cosine_similarity", lambda a, b: nnf.cosine_similarity(a, b, dim=0),
         ("real", "real")),
        ("nn.pairwise_distance", lambda a, b: nnf.pairwise_distance(a, b + 5), ("real", "real")),
        ("nn.multilabel_soft_margin", lambda a, b: nnf.multilabel_soft_margin_loss(
            a[None], b.sigmoid()[None]), ("real", "real")),
        ("linalg.cross", lambda a, b: la.cross(a[:3], b[:3]), ("real", "real")),
        ("linalg.vecdot", lambda a, b: la.vecdot(a, b), ("real", "real")),
        ("lerp", lambda a, b: torch.lerp(a, b, 0.3) ** 2, ("real", "real")),
        ("nn.prelu", lambda a, w: nnf.prelu(a.exp() - 1.5, w[:1]), ("real", "pos")),
    ]


def _matrix_binary_torch(torch: Any) -> list[tuple[str, Callable[..., Any]]]:
    la, nnf = torch.linalg, torch.nn.functional
    return [
        ("linalg.solve", la.solve), ("linalg.solve_triangular", lambda a, b: la.solve_triangular(
            a.triu() + 3 * torch.eye(3, dtype=a.dtype), b, upper=True)),
        ("linalg.lstsq", lambda a, b: la.lstsq(a, b).solution),
        ("linalg.multi_dot", lambda a, b: la.multi_dot([a, b, a])),
        ("linalg.lu_solve", lambda a, b: la.lu_solve(*la.lu_factor(a), b)),
        ("matmul", torch.matmul), ("nn.linear", lambda a, b: nnf.linear(a, b, a[0])),
        ("nn.bilinear", lambda a, b: nnf.bilinear(a, b, a[None])),
        ("nn.conv1d", lambda a, b: nnf.conv1d(a[None], b[:, :, None].expand(3, 3, 2))[0]),
        ("nn.conv2d", lambda a, b: nnf.conv2d(a[None, None], b[None, None, :2, :2])[0, 0]),
        ("nn.conv_transpose1d", lambda a, b: nnf.conv_transpose1d(a[None], b[:, :, None])[0]),
        ("nn.grid_sample", lambda a, b: nnf.grid_sample(
            a[None, None], (0.4 * b[None, :, :2, None]).expand(1, 3, 2, 2).tanh(),
            align_corners=False)[0, 0]),
        ("nn.sdpa", lambda a, b: nnf.scaled_dot_product_attention(a[None], b[None], a[None])[0]),
        ("nn.triplet_margin", lambda a, b: nnf.triplet_margin_loss(a, b, b + 3, margin=10.0)),
        ("nn.embedding", lambda a, b: nnf.embedding(torch.tensor([2, 0, 1, 2]), a) * b[0, 0]),
        ("fft.fft2(a*b)", lambda a, b: torch.fft.fft2(a * b)),
    ]


def torch_samples(points: int = 2) -> list[Sample]:
    """The torch part of the corpus: ``points`` seeded samples of every operator, plus
    the steep points of issue 18."""
    import torch

    dom = _domains(torch)
    samples: list[Sample] = []

    def add(name: str, f: Callable[..., Any], kinds: tuple[str, ...],
            shapes: tuple[tuple[int, ...], ...], tags: tuple[str, ...] = ()) -> None:
        for point in range(points):
            seed = len(samples) * 7919 + point

            def make(kinds: tuple[str, ...] = kinds, seed: int = seed,
                     shapes: tuple[tuple[int, ...], ...] = shapes) -> tuple[Any, ...]:
                g = torch.Generator().manual_seed(seed)
                return tuple(dom[k](g, s).requires_grad_(True) for k, s in zip(kinds, shapes))

            samples.append(Sample(f"torch.{name}#{point}", "torch", f, make, tags))

    for name, f, kind in _unary_torch(torch):
        add(name, f, (kind,), ((5,),))
    shapes = {"sq": (3, 3), "rect": (3, 4), "rect8": (8, 1)}
    for name, f, kind in _matrix_torch(torch):
        add(name, f, ("real",), (shapes[kind],))
    for name, f, kinds in _binary_torch(torch):
        add(name, f, kinds, ((4,), (4,)))
    for name, f in _matrix_binary_torch(torch):
        add(name, f, ("real", "real"), ((3, 3), (3, 3)))
    steep = [("special.digamma@-1.97", torch.special.digamma, (-1.97, -0.51)),
             ("tan@1.5", torch.tan, (1.5, -1.55)), ("logit@0.9999", torch.logit, (0.9999, 1e-4)),
             ("special.polygamma2@-1.97", lambda x: torch.special.polygamma(2, x), (-1.97,)),
             ("lgamma@-2.99", torch.lgamma, (-2.99, -0.02)), ("erfcx@-5", torch.special.erfcx,
                                                               (-5.0, -3.0)),
             ("special.ndtri@1e-6", torch.special.ndtri, (1e-6, 1 - 1e-6)),
             ("rsqrt@1e-3", torch.rsqrt, (1e-3,)), ("atanh@0.999", torch.atanh, (0.999,)),
             ("tan@1.56", torch.tan, (1.56, -1.565)), ("digamma@-0.99", torch.digamma, (-0.99,)),
             ("special.erfinv@0.9999", torch.special.erfinv, (0.9999, -0.99999)),
             ("log1p@-0.9999", torch.log1p, (-0.9999,)), ("acosh@1.0001", torch.acosh, (1.0001,)),
             ("exp@30", torch.exp, (30.0, -30.0)), ("cosh@20", torch.cosh, (20.0,)),
             ("special.gammaln@1e-4", torch.special.gammaln, (1e-4, 171.0)),
             ("special.i0@50", torch.special.i0, (50.0, -40.0)),
             ("special.entr@1e-8", torch.special.entr, (1e-8, 50.0)),
             ("nn.softplus@40", torch.nn.functional.softplus, (40.0, -40.0)),
             ("sigmoid@35", torch.sigmoid, (35.0, -35.0))]
    for name, f, values in steep:
        def make_steep(values: tuple[float, ...] = values) -> tuple[Any, ...]:
            return (torch.tensor(values, dtype=torch.float64, requires_grad=True),)

        samples.append(Sample(f"torch.{name}", "torch", f, make_steep, ("steep",)))
    return samples


# ---------------------------------------------------------------------------------------
# jax
# ---------------------------------------------------------------------------------------
def jax_samples(points: int = 2) -> list[Sample]:
    """The jax part: jax.numpy and jax.scipy.special operators at seeded points."""
    import jax.numpy as jnp
    import jax.scipy.special as jsp

    ops: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = [
        ("numpy.sin", jnp.sin, ("real",)), ("numpy.tanh", jnp.tanh, ("real",)),
        ("numpy.arctan2", jnp.arctan2, ("real", "pos")), ("numpy.hypot", jnp.hypot,
                                                         ("pos", "pos")),
        ("numpy.logaddexp", jnp.logaddexp, ("real", "real")), ("numpy.sinc", jnp.sinc,
                                                               ("real",)),
        ("numpy.cbrt", jnp.cbrt, ("pos",)), ("numpy.arcsinh", jnp.arcsinh, ("real",)),
        ("numpy.log1p", jnp.log1p, ("pos",)), ("numpy.tan", jnp.tan, ("small",)),
        ("numpy.linalg.det", lambda a: jnp.linalg.det(a.reshape(2, 2)), ("real4",)),
        ("numpy.linalg.inv", lambda a: jnp.linalg.inv(a.reshape(2, 2)), ("real4",)),
        ("numpy.linalg.eigh", lambda a: jnp.linalg.eigh(
            a.reshape(2, 2) + a.reshape(2, 2).T)[0], ("real4",)),
        ("numpy.linalg.svd", lambda a: jnp.linalg.svd(a.reshape(2, 2), compute_uv=False),
         ("real4",)),
        ("numpy.fft.fft", lambda a: jnp.fft.fft(a).real, ("real",)),
        ("numpy.fft.rfft", lambda a: jnp.abs(jnp.fft.rfft(a)) ** 2, ("real",)),
        ("numpy.cumprod", jnp.cumprod, ("pos",)), ("numpy.polyval", lambda c, x: jnp.polyval(
            c, x), ("real", "real")),
        ("scipy.special.gammaln", jsp.gammaln, ("pos",)),
        ("scipy.special.digamma", jsp.digamma, ("pos",)),
        ("scipy.special.erf", jsp.erf, ("real",)), ("scipy.special.erfc", jsp.erfc, ("real",)),
        ("scipy.special.erfinv", jsp.erfinv, ("sym",)),
        ("scipy.special.logit", jsp.logit, ("unit",)),
        ("scipy.special.expit", jsp.expit, ("real",)),
        ("scipy.special.xlogy", jsp.xlogy, ("pos", "pos")),
        ("scipy.special.xlog1py", jsp.xlog1py, ("real", "pos")),
        ("scipy.special.entr", jsp.entr, ("pos",)), ("scipy.special.i0e", jsp.i0e, ("real",)),
        ("scipy.special.i1e", jsp.i1e, ("real",)), ("scipy.special.ndtr", jsp.ndtr, ("real",)),
        ("scipy.special.ndtri", jsp.ndtri, ("unit",)),
        ("scipy.special.log_ndtr", jsp.log_ndtr, ("real",)),
        ("scipy.special.betaln", jsp.betaln, ("pos", "pos")),
        ("scipy.special.logsumexp", jsp.logsumexp, ("real",)),
        ("scipy.special.multigammaln", lambda x: jsp.multigammaln(x, 2), ("gt1",)),
        ("scipy.special.erfcx", jsp.erfcx, ("real",)),
        ("scipy.special.polygamma", lambda x: jsp.polygamma(1, x), ("pos",)),
        ("scipy.special.gammainc", lambda x: jsp.gammainc(2.5, x), ("pos",)),
        ("scipy.special.expi", jsp.expi, ("pos",)),
        ("scipy.special.kl_div", jsp.kl_div, ("pos", "pos")),
        ("scipy.special.rel_entr", jsp.rel_entr, ("pos", "pos")),
        ("scipy.special.softmax", jsp.softmax, ("real",)),
        ("scipy.special.dawsn", jsp.dawsn, ("real",)),
    ]
    lows = {"real": (-2.0, 2.0), "small": (-0.6, 0.6), "pos": (0.2, 2.7), "unit": (0.05, 0.95),
            "sym": (-0.9, 0.9), "gt1": (1.2, 3.2), "real4": (-2.0, 2.0)}
    samples = []
    for n, (name, f, kinds) in enumerate(ops):
        for point in range(points):
            def make(kinds: tuple[str, ...] = kinds, seed: int = 1000 * n + point
                     ) -> tuple[Any, ...]:
                rng = np.random.default_rng(seed)
                return tuple(jnp.asarray(rng.uniform(*lows[k], size=4 if k == "real4" else 5),
                                         dtype=jnp.float64) for k in kinds)

            samples.append(Sample(f"jax.{name}#{point}", "jax", f, make))
    return samples


# ---------------------------------------------------------------------------------------
# injected bugs
# ---------------------------------------------------------------------------------------
def _alter(grads: list[Any], bug: str, torch: Any) -> list[Any]:
    """The bug applied to the true input gradients (a list, None for unused)."""
    grads = list(grads)
    if bug.startswith("scale"):
        factor = float(bug.split()[1])
        return [None if g is None else g * factor for g in grads]
    if bug == "zero one element":
        g = grads[0]
        if g is not None and g.numel():
            flat = g.reshape(-1).clone()
            flat[int(torch.argmax(flat.abs()))] = 0
            grads[0] = flat.reshape(g.shape)
        return grads
    if bug == "swap two inputs":
        return [grads[1], grads[0], *grads[2:]]
    raise ValueError(bug)


def torch_bug(sample: Sample, bug: str) -> Sample | None:
    """``sample`` with ``bug`` in its backward (None where the bug changes nothing)."""
    import torch

    inputs = sample.make()
    if bug == "swap two inputs" and (len(inputs) < 2 or inputs[0].shape != inputs[1].shape
                                     or inputs[0].dtype != inputs[1].dtype):
        return None
    op = sample.f

    def true_grads(xs: tuple[Any, ...], gos: tuple[Any, ...], create_graph: bool) -> list[Any]:
        with torch.enable_grad():
            leaves = [x if x.requires_grad and create_graph else x.detach().requires_grad_()
                      for x in xs]
            out = op(*leaves)
            return list(torch.autograd.grad(out, leaves, gos, allow_unused=True,
                                            create_graph=create_graph))

    class Buggy(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *xs: Any) -> Any:
            ctx.save_for_backward(*xs)
            return op(*xs)

        @staticmethod
        def backward(ctx: Any, *gos: Any) -> Any:
            return tuple(_alter(true_grads(ctx.saved_tensors, gos, False), bug, torch))

    # keep only bugs that change the derivative here
    out = op(*inputs)
    go = torch.ones_like(out) if not out.is_complex() else torch.ones_like(out) * (1 + 1j)
    true = true_grads(inputs, (go,), False)
    wrong = _alter(true, bug, torch)
    if all((a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
           for a, b in zip(true, wrong)):
        return None
    return Sample(f"{sample.name} [{bug}]", "torch", Buggy.apply, sample.make, sample.tags)


def torch_double_bug(sample: Sample, bug: str) -> Sample | None:
    """``sample`` whose first backward is right but whose double backward has ``bug``."""
    import torch

    op = sample.f

    def first(xs: list[Any], gos: list[Any]) -> list[Any]:
        out = op(*xs)
        return list(torch.autograd.grad(out, xs, gos, create_graph=True, allow_unused=True))

    def double(xs: tuple[Any, ...], gos: tuple[Any, ...], ggs: tuple[Any, ...]) -> list[Any]:
        with torch.enable_grad():
            xs_ = [x.detach().requires_grad_() for x in xs]
            gos_ = [g.detach().requires_grad_() for g in gos]
            grads = first(xs_, gos_)
            used = [(g, gg) for g, gg in zip(grads, ggs) if g is not None and g.requires_grad]
            if not used:
                return [None] * (len(xs) + len(gos))
            return list(torch.autograd.grad([g for g, _ in used], xs_ + gos_,
                                            [gg for _, gg in used], allow_unused=True))

    def alter(dd: list[Any], n: int, ggs: tuple[Any, ...], xs: tuple[Any, ...],
              gos: tuple[Any, ...]) -> list[Any]:
        if bug == "double backward x1.1":
            return [None if d is None else d * 1.1 for d in dd[:n]] + dd[n:]
        if bug == "double backward zeroed":
            return [None if d is None else torch.zeros_like(d) for d in dd[:n]] + dd[n:]
        ones = tuple(torch.ones_like(g) for g in ggs)
        return double(xs, gos, ones)  # ignores the incoming gradient gg

    class FirstBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, n: int, *args: Any) -> Any:
            ctx.n = n
            ctx.save_for_backward(*args)
            xs, gos = args[:n], args[n:]
            with torch.enable_grad():
                xs_ = [x.detach().requires_grad_() for x in xs]
                grads = torch.autograd.grad(op(*xs_), xs_, gos, allow_unused=True)
            return tuple(torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads))

        @staticmethod
        def backward(ctx: Any, *ggs: Any) -> Any:
            args = ctx.saved_tensors
            xs, gos = args[:ctx.n], args[ctx.n:]
            return (None, *alter(double(xs, gos, ggs), ctx.n, ggs, xs, gos))

    class Op(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *xs: Any) -> Any:
            ctx.save_for_backward(*xs)
            return op(*xs)

        @staticmethod
        def backward(ctx: Any, *gos: Any) -> Any:
            xs = ctx.saved_tensors
            return FirstBackward.apply(len(xs), *xs, *gos)

    xs = sample.make()
    out = op(*xs)
    if out.is_complex() or any(x.is_complex() for x in xs):
        return None
    g = torch.Generator().manual_seed(5)
    gos = (torch.rand(out.shape, generator=g, dtype=out.dtype) - 0.5,)
    ggs = tuple(torch.rand(x.shape, generator=g, dtype=x.dtype) - 0.5 for x in xs)
    true = double(xs, gos, ggs)
    wrong = alter(true, len(xs), ggs, xs, gos)
    if all((a is None or not bool(torch.any(a != 0))) and (b is None or not bool(
            torch.any(b != 0))) or (a is not None and b is not None and torch.allclose(a, b))
           for a, b in zip(true, wrong)):
        return None
    return Sample(f"{sample.name} [{bug}]", "torch", Op.apply, sample.make, sample.tags)


def jax_bug(sample: Sample, bug: str) -> Sample | None:
    """A jax sample whose ``custom_vjp`` rule has ``bug``."""
    import jax
    import jax.numpy as jnp

    inputs = sample.make()
    if bug == "swap two inputs" and (len(inputs) < 2 or inputs[0].shape != inputs[1].shape):
        return None
    op = sample.f

    @jax.custom_vjp
    def buggy(*xs: Any) -> Any:
        return op(*xs)

    def fwd(*xs: Any) -> tuple[Any, Any]:
        return op(*xs), xs

    def bwd(xs: Any, g: Any) -> Any:
        grads = list(jax.vjp(op, *xs)[1](g))
        if bug.startswith("scale"):
            grads = [x * float(bug.split()[1]) for x in grads]
        elif bug == "zero one element":
            grads[0] = grads[0].at[jnp.argmax(jnp.abs(grads[0]))].set(0.0)
        else:
            grads = [grads[1], grads[0], *grads[2:]]
        return tuple(grads)

    buggy.defvjp(fwd, bwd)
    y, pull = jax.vjp(op, *inputs)
    true = pull(jnp.ones_like(y))
    wrong = bwd(inputs, jnp.ones_like(y))
    if all(bool(jnp.array_equal(a, b)) for a, b in zip(true, wrong)):
        return None
    return Sample(f"{sample.name} [{bug}]", "jax", buggy, sample.make)

