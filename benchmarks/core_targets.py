"""Core targets of the first issue, measured in one run and printed as ratios.

1. Accuracy: central + auto on the report's tanh MLP vs the best fixed decade delta.
2. Speed: batched Jacobian time / time of the bare batched call of f it needs.
3. Memory: peak memory with the default budget while n grows (n up to 1e4).

Run: python benchmarks/core_targets.py
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import numdiffx as nd
from numdiffx.studies import make_mlp


def accuracy() -> None:
    x64 = np.random.default_rng(0).standard_normal((100, 5))
    net64 = make_mlp("tanh")
    exact = net64.jacobian(x64)
    print("1. accuracy, tanh MLP (100, 5), central: max |J - J_exact|")
    for dtype in ("float64", "float32"):
        net, x = net64.astype(dtype), x64.astype(dtype)
        errs = {}
        for d in (10.0 ** -k for k in range(1, 11)):
            j = nd.jacobian(net, x, step=d, evaluation="batched")
            errs[d] = float(np.nanmax(np.abs(j - exact))) if not np.isnan(j).all() else np.inf
        best_d = min(errs, key=errs.get)
        auto = float(np.max(np.abs(nd.jacobian(net, x, evaluation="batched") - exact)))
        fixed5 = errs[1e-5]
        print(f"   {dtype}: auto {auto:.3e}  best decade {errs[best_d]:.3e} (delta {best_d:.0e})  "
              f"ratio {auto / errs[best_d]:.2f} (target <= 2)  report's fixed 1e-5: {fixed5:.3e}")


def speed(repeats: int = 5) -> None:
    net = make_mlp("tanh")
    x = np.random.default_rng(0).standard_normal((100, 5))
    batch = np.repeat(x[None], 2 * x.size, axis=0)  # the 1000 perturbed copies it needs
    net(batch)
    bare, jac = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        net(batch)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        nd.jacobian(net, x, evaluation="batched")
        jac.append(time.perf_counter() - t)
    b, j = float(np.median(bare)), float(np.median(jac))
    print(f"2. speed, numpy MLP x (100, 5): bare batched call {b * 1e3:.1f} ms, jacobian "
          f"{j * 1e3:.1f} ms, ratio {j / b:.3f} (target <= 1.3; median of {repeats})")


def memory() -> None:
    print("3. peak memory of jacobian (default 256 MiB budget), f = x * sum(x), J is n x n:")
    for n in (1_000, 3_000, 10_000):
        x = np.linspace(0.1, 1.0, n)
        tracemalloc.start()
        t = time.perf_counter()
        j = nd.jacobian(lambda v: v * np.sum(v, axis=-1, keepdims=True), x, evaluation="batched")
        elapsed = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        dense = j.nbytes
        print(f"   n={n:>6}: {elapsed:6.2f} s, peak {peak / 2**20:8.1f} MiB, "
              f"result {dense / 2**20:7.1f}"
              f" MiB, peak - 2 x result {(peak - 2 * dense) / 2**20:7.1f} MiB (the working set)")
        del j


if __name__ == "__main__":
    accuracy()
    speed()
    memory()
