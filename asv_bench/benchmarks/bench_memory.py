"""Peak memory of a batched dense Jacobian as n grows (f = x * sum(x), default budget).

What ``asv_bench/compare/peak_memory_vs_result_size.py`` prints: the working set should
stay near the 256 MiB budget while the n x n result grows. ``track_result_mib`` is the
result's own size, for comparison with ``peakmem_jacobian``.
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd


def f(v):
    return v * np.sum(v, axis=-1, keepdims=True)


class DenseJacobianMemory:
    params = [[1_000, 3_000]]
    param_names = ["n"]
    timeout = 120

    def setup(self, n):
        self.x = np.linspace(0.1, 1.0, n)

    def peakmem_jacobian(self, n):
        nd.jacobian(f, self.x, evaluation="batched")

    def track_result_mib(self, n):
        return n * n * 8 / 2**20

    track_result_mib.unit = "MiB"  # type: ignore[attr-defined]
