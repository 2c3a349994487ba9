"""The paths users are told to prefer vs the plain call (issue 37's table), in one run.

Compared, each row interleaved (min of repeats, each repeat a loop of calls):

1. ``full_output=True`` vs the same call without it: ``jacobian(f, x,
   evaluation="batched")``, ``gradient`` and ``jvp`` of ``f(x) = 2 x`` (``sum(x**2)``
   for the gradient) at n = 10 and 100, numpy and torch CPU, float64. Target:
   full_output <= 1.5 x plain + 50 us.
2. jax eager (no ``jax.jit``), float64: ``nd.jacobian(f, x, evaluation="batched")`` vs
   the bare batched central difference in jax (the 2n copies in one call,
   ``numdiffx.studies.timing.batched_central_difference``), and ``nd.jacobian(f, x)``
   (the default: central, vmap) vs ``jax.jacfwd(f)(x)``, n = 10 and 100. Target:
   <= 1.5 x reference + 50 us.
3. The checks: ``nd.gradcheck`` vs ``torch.autograd.gradcheck`` on a conv2d (2x3x8x8
   input, 4x3x3x3 weight) and a small MLP, slow and fast mode; ``nd.check_grads(order=2)``
   vs ``jax.test_util.check_grads`` on a small MLP. Target: <= 1.2 x the framework's.

Machine-dependent: on shared cores compare the ratios printed within one run, never
absolute times across runs. asv: ``asv_bench/benchmarks/bench_overhead.py``
(``FullOutputRatio``, ``JaxEagerRatio``) and ``bench_checks_speed.py``.
Run: python asv_bench/compare/full_output_and_jax_eager_vs_plain.py
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import numdiffx as nd
from numdiffx.studies.timing import batched_central_difference

TARGET = (1.5, 50e-6)  # ratio and absolute allowance of rows 1 and 2


def per_call(funs: dict[str, Callable[[], Any]], repeats: int = 9, inner: int = 10,
             sync: Callable[[Any], Any] = lambda v: v) -> dict[str, float]:
    """Min over ``repeats`` of the mean time of ``inner`` calls, the candidates
    alternating each repeat (a warm-up call of each excluded)."""
    for fun in funs.values():
        sync(fun())
    best = {name: float("inf") for name in funs}
    for _ in range(repeats):
        for name, fun in funs.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                sync(fun())
            best[name] = min(best[name], (time.perf_counter() - t0) / inner)
    return best


def row(label: str, t: float, ref: float, ref_label: str, ratio: float = TARGET[0],
        extra: float = TARGET[1]) -> None:
    ok = t <= ratio * ref + extra
    print(f"{label:52s} {t * 1e6:9.0f} us  {ref_label:26s} {ref * 1e6:9.0f} us  "
          f"{t / ref:5.2f}x  {'met' if ok else 'NOT met'}")


def full_output_rows() -> None:
    libs: list[tuple[str, Callable[[Any], Any]]] = [("numpy", np.asarray)]
    if importlib.util.find_spec("torch"):
        import torch

        libs.append(("torch", torch.as_tensor))
    for lib, conv in libs:
        for n in (10, 100):
            x = conv(np.random.default_rng(0).standard_normal(n))

            def two(v: Any) -> Any:
                return 2 * v

            def sq(v: Any) -> Any:
                return (v * v).sum(-1)

            ops = {
                "jacobian": lambda fo, x=x: nd.jacobian(two, x, evaluation="batched",
                                                         full_output=fo),
                "gradient": lambda fo, x=x: nd.gradient(sq, x, evaluation="batched",
                                                         full_output=fo),
                "jvp": lambda fo, x=x: nd.jvp(two, (x,), (x,), full_output=fo),
            }
            for name, op in ops.items():
                t = per_call({"full": lambda op=op: op(True), "plain": lambda op=op: op(False)})
                row(f"{lib} {name} full_output n={n}", t["full"], t["plain"], "plain call")


def jax_rows() -> None:
    if not importlib.util.find_spec("jax"):
        print("jax not installed: rows 2 skipped")
        return
    import jax

    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def two(v: Any) -> Any:
        return 2 * v

    for n in (10, 100):
        x = jnp.asarray(np.random.default_rng(0).standard_normal(n))
        t = per_call({"nd_batched": lambda x=x: nd.jacobian(two, x, evaluation="batched"),
                      "bare": lambda x=x: batched_central_difference(two, x, 1e-5),
                      "nd_default": lambda x=x: nd.jacobian(two, x),
                      "jacfwd": lambda x=x: jax.jacfwd(two)(x)},
                     inner=5, sync=jax.block_until_ready)
        row(f"jax eager batched n={n}", t["nd_batched"], t["bare"], "bare batched FD")
        row(f"jax eager default n={n}", t["nd_default"], t["jacfwd"], "jax.jacfwd")


def check_rows() -> None:
    if importlib.util.find_spec("torch"):
        import torch

        F = torch.nn.functional
        g = torch.Generator().manual_seed(0)

        def leaf(*shape: int) -> Any:
            return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

        conv_in = (leaf(2, 3, 8, 8), leaf(4, 3, 3, 3))
        mlp_in = (leaf(4, 6), leaf(8, 6), leaf(3, 8))

        def conv(x: Any, w: Any) -> Any:
            return F.conv2d(x, w)

        def mlp(x: Any, w1: Any, w2: Any) -> Any:
            return torch.tanh(x @ w1.T) @ w2.T

        for label, fun, inputs in (("conv2d", conv, conv_in), ("MLP", mlp, mlp_in)):
            for fast in (False, True):
                t = per_call({
                    "nd": lambda f=fun, i=inputs, fm=fast: nd.gradcheck(f, i, fast_mode=fm),
                    "torch": lambda f=fun, i=inputs, fm=fast: torch.autograd.gradcheck(
                        f, i, fast_mode=fm)}, repeats=5, inner=1)
                row(f"gradcheck {label}{' fast' if fast else ''}", t["nd"], t["torch"],
                    "torch.autograd.gradcheck", 1.2, 0.0)
            t = per_call({
                "nd": lambda f=fun, i=inputs: nd.gradgradcheck(f, i),
                "torch": lambda f=fun, i=inputs: torch.autograd.gradgradcheck(f, i)},
                repeats=3, inner=1)
            row(f"gradgradcheck {label}", t["nd"], t["torch"], "torch gradgradcheck", 1.2,
                0.0)
    if importlib.util.find_spec("jax"):
        import jax
        from jax.test_util import check_grads

        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        r = np.random.default_rng(1)
        w1, w2, xb = (jnp.asarray(r.standard_normal(s)) for s in ((8, 6), (3, 8), (4, 6)))

        def net(w1: Any, w2: Any) -> Any:
            return jnp.tanh(xb @ w1.T) @ w2.T

        t = per_call({"nd": lambda: nd.check_grads(net, (w1, w2), order=2),
                      "jax": lambda: check_grads(net, (w1, w2), order=2)}, repeats=3, inner=1)
        row("check_grads(order=2) MLP", t["nd"], t["jax"], "jax check_grads", 1.2, 0.0)


def main() -> None:
    print("issue 37: each path / its reference, min of interleaved repeats, float64; on shared"
          " cores compare ratios within this run only")
    full_output_rows()
    jax_rows()
    check_rows()


if __name__ == "__main__":
    main()
