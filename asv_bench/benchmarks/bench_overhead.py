"""numdiffx vs the bare batched finite difference of the SAME stencil (issue 17's table).

``nd.jacobian(f, x, method=M, evaluation="batched")`` against the least work the stencil
needs: forward = the report's JacrevFinite algorithm (x and its n copies in one call),
central = the 2n copies x +- h e_i in one call (``numdiffx.studies.timing``). Forward
against forward, central against central, same f and x. ``track_ratio`` measures both in
one run (min of 5, interleaved), as ``asv_bench/compare/numdiffx_vs_bare_batched_fd.py``
prints it; ``peakmem_jacobian`` the peak memory of each. Target: numdiffx <= 1.5 x bare +
50 us (numpy and torch: plain calls take numdiffx's fast lane). jax runs eagerly here, both
sides dispatching op by op (numdiffx builds unit matrices: jax has no in-place update
outside jit); jitted jax is in ``bench_timing.py``.
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd
from numdiffx.studies.timing import batched_central_difference, jacrev_finite

from ._common import SEED, mlp, ratio_of_min_times

CASES = ["two-10", "two-100", "two-1000", "mlp-100"]


def _bare(f, x, stencil):
    if stencil == "forward":
        return lambda: jacrev_finite(f, x, delta=1e-7)
    return lambda: batched_central_difference(f, x, delta=1e-5)


BACKENDS = ["numpy", "torch", "jax"]


class BatchedOverhead:
    params = (BACKENDS, CASES, ["forward", "central"], ["bare", "numdiffx"])
    param_names = ["backend", "case", "stencil", "implementation"]
    timeout = 120

    def setup(self, backend, case, stencil, implementation):
        net, x = mlp(backend, "tanh", "float64", 100)
        kind, size = case.split("-")
        if kind == "two":
            x = net.asarray(np.random.default_rng(SEED).standard_normal(int(size)))
            f = lambda v: 2 * v  # noqa: E731
        else:
            f = net.f
        self.net = net
        self.bare = _bare(f, x, stencil)
        self.numdiffx = lambda: nd.jacobian(f, x, method=stencil, evaluation="batched")
        self.call = self.bare if implementation == "bare" else self.numdiffx
        net.sync(self.call())

    def time_jacobian(self, backend, case, stencil, implementation):
        self.net.sync(self.call())

    def peakmem_jacobian(self, backend, case, stencil, implementation):
        self.net.sync(self.call())


class BatchedOverheadRatio:
    """numdiffx time / bare time of the same stencil, measured in one run."""

    params = (BACKENDS, CASES, ["forward", "central"])
    param_names = ["backend", "case", "stencil"]
    unit = "ratio"
    timeout = 120

    def setup(self, backend, case, stencil):
        self.cell = BatchedOverhead()
        self.cell.setup(backend, case, stencil, "numdiffx")

    def track_ratio(self, backend, case, stencil):
        return ratio_of_min_times(self.cell.numdiffx, self.cell.bare, sync=self.cell.net.sync)
