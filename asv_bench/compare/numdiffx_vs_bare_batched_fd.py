"""numdiffx's batched Jacobian vs the bare batched finite difference of the SAME stencil.

Compared: ``nd.jacobian(f, x, method=M, evaluation="batched")`` against the least work the
stencil M needs, written out by hand: the perturbed copies of x stacked into one batch, ONE
call of f, differences divided by the step (forward: x and its n copies, n + 1 rows; central:
the 2n copies x +- h e_i). Forward against forward, central against central; same f, same
x, same backend, float64. numdiffx also checks a sentinel row (f(x) within the batch),
chooses a representable step per element and reports statuses: that is what the ratio
prices.

Cases (the table of issue 17): ``two(x) = 2 x`` at n = 10, 100, 1000, and the report's
5-128-128-128-5 tanh MLP at x of shape (100, 5) (500 inputs) -- the report is "JacrevFinite:
Finite Difference approach to replacing PyTorch Autograd", B. Hendrata, 2024 -- on numpy
and torch CPU. jax (under jit) is in ``numdiffx_vs_autodiff.py``.

Target: numdiffx <= 1.5 x bare + 50 us. asv: ``asv_bench/benchmarks/bench_overhead.py``.
Run: python asv_bench/compare/numdiffx_vs_bare_batched_fd.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from _harness import best_times, ms, verdict

import numdiffx as nd
from numdiffx.studies import make_mlp, network_for
from numdiffx.studies.timing import batched_central_difference, jacrev_finite

STEP = {"forward": 1e-7, "central": 1e-5}  # the bare difference's fixed step


def bare_batched_fd(f: Callable[[Any], Any], x: Any, stencil: str, h: float) -> Any:
    """The stencil's perturbed copies in ONE call of f: forward is the report's JacrevFinite
    algorithm (x and its n copies, n + 1 rows), central the 2n copies x +- h e_i."""
    if stencil == "forward":
        return jacrev_finite(f, x, delta=h)
    return batched_central_difference(f, x, delta=h)


def cases(backend: str) -> list[tuple[str, Callable[[Any], Any], Any]]:
    net = network_for(make_mlp("tanh"), backend)
    rng = np.random.default_rng(0)
    out = [(f"two(x), n={n}", lambda x: 2 * x, net.asarray(rng.standard_normal(n)))
           for n in (10, 100, 1000)]
    out.append(("tanh MLP, x (100, 5)", net.f, net.asarray(rng.standard_normal((100, 5)))))
    return out


def main() -> None:
    backends = ["numpy"]
    try:
        import torch

        backends.append("torch")
        no_grad: Any = torch.no_grad
    except ImportError:
        print("torch not installed: numpy only")
    print("numdiffx batched Jacobian / the bare batched FD of the same stencil (one call of f),"
          " float64, min of 7 interleaved runs after a warm-up")
    print(f"{'backend':7s} {'case':22s} {'stencil':8s} {'bare ms':>9s} {'numdiffx ms':>11s} "
          f"{'ratio':>6s}  target <= 1.5x + 50 us")
    for backend in backends:
        for label, f, x in cases(backend):
            for stencil in ("forward", "central"):
                def numdiffx(f=f, x=x, stencil=stencil) -> Any:
                    return nd.jacobian(f, x, method=stencil, evaluation="batched")

                def bare(f=f, x=x, stencil=stencil, backend=backend) -> Any:
                    if backend == "torch":
                        with no_grad():
                            return bare_batched_fd(f, x, stencil, STEP[stencil])
                    return bare_batched_fd(f, x, stencil, STEP[stencil])

                res = best_times({"bare": bare, "numdiffx": numdiffx})
                (t_bare, j_bare), (t_nd, j_nd) = res["bare"], res["numdiffx"]
                gap = float(np.max(np.abs(np.asarray(j_nd) - np.asarray(j_bare))))
                assert gap < 1e-4, f"the two differ by {gap}: not the same Jacobian"
                ok = t_nd <= 1.5 * t_bare + 50e-6
                print(f"{backend:7s} {label:22s} {stencil:8s} {ms(t_bare)} {ms(t_nd):>11s} "
                      f"{t_nd / t_bare:6.2f}  {verdict(ok)}")


if __name__ == "__main__":
    main()
