"""numdiffx vs autodiff and vs the report's JacrevFinite algorithm, on the report's network.

The network is the 5-128-128-128-5 tanh MLP of the report ("JacrevFinite: Finite
Difference approach to replacing PyTorch Autograd", B. Hendrata, 2024) at x of shape
(100, 5), float64, CPU, the same weights on every backend (``numdiffx.studies.network_for``).
Each line says what is compared with what; errors are max |J - J_exact| against the
analytic Jacobian, because the methods do not compute the same approximation:

1. torch: ``torch.func.jacrev`` and ``jacfwd`` (exact to round-off); the JacrevFinite
   algorithm (forward difference, delta 1e-5, n + 1 points in one call) against numdiffx
   forward (the same n + 1 points in one call, automatic step): like for like; numdiffx
   central (2n + 1 points, about the square of the accuracy) against the bare batched
   central difference (the least work that stencil needs).
2. jax, everything under ``jax.jit`` (compilation in the warm-up): ``jax.jacfwd`` against
   numdiffx forward and central, and the JacrevFinite algorithm against numdiffx forward.

The FD-vs-autodiff ratio answers the report's question (is one batched call of f cheaper
than autodiff?) at a different accuracy: read it with the error columns.
Run: python asv_bench/compare/numdiffx_vs_autodiff.py
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _harness import best_times, ms  # noqa: E402
from numdiffx_vs_bare_batched_fd import bare_batched_fd  # noqa: E402

import numdiffx as nd  # noqa: E402
from numdiffx.studies import jacrev_finite, make_mlp, network_for  # noqa: E402

X = np.random.default_rng(0).standard_normal((100, 5))
EXACT = make_mlp("tanh").jacobian(X)


def report(title: str, res: dict[str, tuple[float, Any]], to_numpy: Any,
           pairs: list[tuple[str, str, str]]) -> None:
    print(title)
    for name, (t, value) in res.items():
        err = float(np.max(np.abs(to_numpy(value) - EXACT)))
        print(f"   {name:34s} {ms(t)} ms   max error {err:8.1e}")
    for a, b, what in pairs:
        print(f"   {a} / {b}: {res[a][0] / res[b][0]:5.2f}   ({what})")


def torch_comparison() -> None:
    try:
        import torch
    except ImportError:
        print("1. torch not installed: skipped")
        return
    net = network_for(make_mlp("tanh"), "torch")
    x = net.asarray(X)

    def bare_central() -> Any:
        with torch.no_grad():
            return bare_batched_fd(net.f, x, "central", 1e-5)

    funs = {
        "torch.func.jacrev": lambda: torch.func.jacrev(net.f)(x),
        "torch.func.jacfwd": lambda: torch.func.jacfwd(net.f)(x),
        "JacrevFinite algorithm (forward)": lambda: jacrev_finite(net.f, x),
        "numdiffx forward, batched": lambda: nd.jacobian(net.f, x, method="forward",
                                                          evaluation="batched"),
        "bare batched central": bare_central,
        "numdiffx central, batched": lambda: nd.jacobian(net.f, x, evaluation="batched"),
        "numdiffx default (vmap)": lambda: nd.jacobian(net.f, x),
    }
    res = best_times(funs, repeats=5)
    report(f"1. torch CPU float64, {torch.get_num_threads()} threads, min of 5 interleaved "
           "runs after a warm-up", res, net.to_numpy, [
               ("numdiffx forward, batched", "JacrevFinite algorithm (forward)",
                "like for like: forward differences, n + 1 points, one call"),
               ("numdiffx central, batched", "bare batched central",
                "like for like: the same 2n points"),
               ("numdiffx forward, batched", "torch.func.jacrev",
                "FD vs reverse-mode autodiff, at the errors above"),
               ("numdiffx central, batched", "torch.func.jacrev",
                "FD vs reverse-mode autodiff, at the errors above")])


def jax_comparison() -> None:
    try:
        import jax
    except ImportError:
        print("2. jax not installed: skipped")
        return
    net = network_for(make_mlp("tanh"), "jax")
    x = net.asarray(X)
    jacfwd = jax.jit(jax.jacfwd(net.f))
    forward = jax.jit(lambda x: nd.jacobian(net.f, x, method="forward", evaluation="batched"))
    central = jax.jit(lambda x: nd.jacobian(net.f, x, evaluation="batched"))
    jrf = jax.jit(lambda x: jacrev_finite(net.f, x))
    res = best_times({"jax.jit(jax.jacfwd)": lambda: jacfwd(x),
                      "jax.jit(JacrevFinite algorithm)": lambda: jrf(x),
                      "jax.jit(numdiffx forward)": lambda: forward(x),
                      "jax.jit(numdiffx central)": lambda: central(x)},
                     repeats=5, sync=lambda v: v.block_until_ready())
    report("2. jax CPU float64 under jax.jit, min of 5 interleaved runs (compilation in the "
           "warm-up)", res, net.to_numpy, [
               ("jax.jit(numdiffx forward)", "jax.jit(JacrevFinite algorithm)",
                "like for like: forward differences, n + 1 points"),
               ("jax.jit(numdiffx forward)", "jax.jit(jax.jacfwd)",
                "FD vs forward-mode autodiff, at the errors above"),
               ("jax.jit(numdiffx central)", "jax.jit(jax.jacfwd)",
                "FD vs forward-mode autodiff, at the errors above")])


if __name__ == "__main__":
    torch_comparison()
    jax_comparison()
