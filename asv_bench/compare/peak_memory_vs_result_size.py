"""Peak memory of a batched Jacobian vs the size of the Jacobian it returns, as n grows.

f(x) = x * sum(x) (dense n x n Jacobian), ``nd.jacobian(f, x, evaluation="batched")``
with the default memory budget (256 MiB of perturbed inputs and outputs held at once).
Compared: the peak traced memory (tracemalloc; numpy's allocations are traced) against the
result's own size: a working set that stays near the budget while the result grows is what
chunking promises; a working set that grows with n x n would not be.
Run: python asv_bench/compare/peak_memory_vs_result_size.py
"""

from __future__ import annotations

import time

import numpy as np
from _harness import peak_bytes

import numdiffx as nd


def f(v: np.ndarray) -> np.ndarray:
    return v * np.sum(v, axis=-1, keepdims=True)


def main() -> None:
    mib = 2**20
    print("peak traced memory of nd.jacobian(f, x, evaluation='batched'), f = x * sum(x), "
          "default 256 MiB budget")
    for n in (1_000, 3_000, 10_000):
        x = np.linspace(0.1, 1.0, n)
        t0 = time.perf_counter()
        peak, jac = peak_bytes(lambda x=x: nd.jacobian(f, x, evaluation="batched"))
        elapsed = time.perf_counter() - t0
        print(f"   n={n:>6}: {elapsed:6.2f} s, peak {peak / mib:8.1f} MiB, result "
              f"{jac.nbytes / mib:7.1f} MiB, peak - 2 x result {(peak - 2 * jac.nbytes) / mib:7.1f}"
              " MiB (the working set)")
        del jac


if __name__ == "__main__":
    main()
