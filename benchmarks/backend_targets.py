"""Backend targets of the backends issue, measured in one run and printed as ratios.

1. torch, the report's tanh network at x (100, 5), CPU, float64: numdiffx Jacobian time
   / ``torch.func.jacrev`` time, and / a minimal JacrevFinite-style batched forward
   difference (delta 1e-5), with each one's max error against jacrev.
2. jax: numdiffx under ``jax.jit`` / ``jax.jit(jax.jacfwd)`` on the same network.

Times are medians of ``REPEATS`` runs after ``WARMUP`` untimed runs (jit compilation
and torch's first-call costs are in the warm-up). Run: python benchmarks/backend_targets.py
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import numpy as np  # noqa: E402

import numdiffx as nd  # noqa: E402
from numdiffx.studies import make_mlp, network_for  # noqa: E402

REPEATS, WARMUP = 7, 2


def timed_all(funs: dict[str, Callable[[], Any]], sync: Callable[[Any], None]) -> (
        dict[str, tuple[float, Any]]):
    """Median time and result of each candidate; repeats are interleaved (round robin)
    so that load from other processes hits every candidate alike."""
    outs = {}
    for name, fun in funs.items():
        for _ in range(WARMUP):
            outs[name] = fun()
            sync(outs[name])
    times: dict[str, list[float]] = {name: [] for name in funs}
    for _ in range(REPEATS):
        for name, fun in funs.items():
            t0 = time.perf_counter()
            out = fun()
            sync(out)
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), outs[name]) for name in funs}


def forward_difference_baseline(f: Callable[[Any], Any], x: Any, delta: float = 1e-5) -> Any:
    """JacrevFinite-style: stack x + delta e_i copies, ONE batched call, subtract, divide."""
    import torch

    n = x.numel()
    eye = torch.eye(n, dtype=x.dtype, device=x.device).reshape(n, *x.shape)
    batch = torch.cat([x.unsqueeze(0), x.unsqueeze(0) + delta * eye], dim=0)
    with torch.no_grad():
        y = f(batch)  # (n + 1, *out)
    diff = (y[1:] - y[:1]) / delta  # (n, *out)
    return diff.reshape(n, -1).T.reshape(*y.shape[1:], *x.shape)


def bare_batch(f: Callable[[Any], Any], x: Any, m: int) -> Any:
    """f alone on m stacked copies of x: the evaluations a central Jacobian cannot avoid."""
    import torch

    with torch.no_grad():
        return f(x.unsqueeze(0).expand(m, *x.shape).contiguous())


def torch_targets(x_np: np.ndarray) -> None:
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    net = network_for(make_mlp("tanh"), "torch").f  # the studies' same-weights network

    x = torch.tensor(x_np)

    def sync(_: Any) -> None:
        nd.backends.backend_for(x).synchronize(x)

    variants = {"central (default), vmap": {}, "central, batched": {"evaluation": "batched"},
                "forward (auto step), batched": {"evaluation": "batched", "method": "forward"}}
    funs: dict[str, Callable[[], Any]] = {
        "jacrev": lambda: torch.func.jacrev(net)(x),
        "fd": lambda: forward_difference_baseline(net, x),
        "bare": lambda: bare_batch(net, x, 2 * x.numel()),
        **{k: (lambda kw=kw: nd.jacobian(net, x, **kw)) for k, kw in variants.items()}}
    res = timed_all(funs, sync)
    (t_ref, ref), (t_base, base) = res["jacrev"], res["fd"]
    err_base = float((base - ref).abs().max())
    t_bare = res["bare"][0]
    print(f"1. torch CPU float64, tanh network 5-128-128-128-5 at x (100, 5), "
          f"{torch.get_num_threads()} threads, median of {REPEATS} interleaved "
          f"(warm-up {WARMUP} excluded):")
    print(f"   torch.func.jacrev                     {t_ref * 1e3:8.1f} ms")
    print(f"   forward diff, delta 1e-5 (n+1 pts)    {t_base * 1e3:8.1f} ms  "
          f"max err {err_base:.2e}")
    print(f"   bare f on the 2n = {2 * x.numel()} points central needs: {t_bare * 1e3:8.1f} ms "
          f"(/ jacrev {t_bare / t_ref:5.2f}, / forward-1e-5 {t_bare / t_base:5.2f}): the floor")
    for label in variants:
        t, jac = res[label]
        err = float((jac - ref).abs().max())
        print(f"   numdiffx {label:28s} {t * 1e3:8.1f} ms  max err {err:.2e}  "
              f"/ jacrev {t / t_ref:5.2f}  / forward-1e-5 {t / t_base:5.2f}  "
              f"error {err_base / err:.0f}x smaller")


def jax_targets(x_np: np.ndarray) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    net = network_for(make_mlp("tanh"), "jax").f  # the studies' same-weights network

    x = jnp.asarray(x_np)

    def sync(out: Any) -> None:
        out.block_until_ready()

    jacfwd = jax.jit(jax.jacfwd(net))
    central = jax.jit(lambda x: nd.jacobian(net, x))
    batched = jax.jit(lambda x: nd.jacobian(net, x, evaluation="batched"))
    res = timed_all({"jacfwd": lambda: jacfwd(x), "central (default), vmap": lambda: central(x),
                     "central, batched": lambda: batched(x)}, sync)
    t_fwd, ref = res["jacfwd"]
    print(f"2. jax CPU float64, same network and x, under jax.jit, median of {REPEATS} "
          "interleaved (compilation in the warm-up):")
    print(f"   jax.jit(jax.jacfwd)                   {t_fwd * 1e3:8.1f} ms")
    for label in ("central (default), vmap", "central, batched"):
        t, jac = res[label]
        err = float(jnp.max(jnp.abs(jac - ref)))
        print(f"   numdiffx {label:28s} {t * 1e3:8.1f} ms  max err {err:.2e}  "
              f"/ jacfwd {t / t_fwd:5.2f}")


if __name__ == "__main__":
    x0 = np.random.default_rng(0).standard_normal((100, 5))
    torch_targets(x0)
    jax_targets(x0)
