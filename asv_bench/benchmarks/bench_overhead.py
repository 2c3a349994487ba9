"""numdiffx vs the bare batched finite difference of the SAME stencil (issue 17's table).

``nd.jacobian(f, x, method=M, evaluation="batched")`` against the least work the stencil
needs: forward = the report's JacrevFinite algorithm (x and its n copies in one call),
central = the 2n copies x +- h e_i in one call (``numdiffx.studies.timing``). Forward
against forward, central against central, same f and x. ``track_ratio`` measures both in
one run (min of 5, interleaved), as ``asv_bench/compare/numdiffx_vs_bare_batched_fd.py``
prints it; ``peakmem_jacobian`` the peak memory of each. Target: numdiffx <= 1.5 x bare +
50 us (numpy and torch: plain calls take numdiffx's fast lane; jax eagerly on the CPU its
host bridge: numdiffx's arithmetic in numpy, f in jax); jitted jax is in ``bench_timing.py``.

Issue 37's rows (``asv_bench/compare/full_output_and_jax_eager_vs_plain.py`` prints them):
``FullOutputRatio`` -- ``full_output=True`` / the plain call (jacobian, gradient, jvp);
``JaxEagerRatio`` -- jax eager batched / the bare batched difference, and the default
call / ``jax.jacfwd``; the checks' rows are ``bench_checks_speed.py``'s ``ChecksRatio``.
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd
from numdiffx.studies.timing import batched_central_difference, jacrev_finite

from ._common import SEED, mlp, ratio_of_min_times, require

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


def _fn(backend, n):
    require(backend)
    x = np.random.default_rng(SEED).standard_normal(n)
    if backend == "torch":
        import torch

        return torch.as_tensor(x)
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax.numpy.asarray(x)
    return x


def _two(v):
    return 2 * v


def _square_sum(v):
    return (v * v).sum(-1)


class FullOutputRatio:
    """``full_output=True`` time / the same call's without it, in one run (target
    <= 1.5x + 50 us: the estimate and statuses from the same points)."""

    params = (["numpy", "torch"], [10, 100], ["jacobian", "gradient", "jvp"])
    param_names = ["backend", "n", "operation"]
    unit = "ratio"
    timeout = 120

    def setup(self, backend, n, operation):
        x = _fn(backend, n)
        if operation == "jacobian":
            self.call = lambda fo: nd.jacobian(_two, x, evaluation="batched", full_output=fo)
        elif operation == "gradient":
            self.call = lambda fo: nd.gradient(_square_sum, x, evaluation="batched",
                                               full_output=fo)
        else:
            self.call = lambda fo: nd.jvp(_two, (x,), (x,), full_output=fo)

    def track_ratio(self, backend, n, operation):
        return ratio_of_min_times(lambda: self.call(True), lambda: self.call(False),
                                  repeats=9)


class JaxEagerRatio:
    """jax without jit: numdiffx / its reference in one run (target <= 1.5x + 50 us)."""

    params = ([10, 100], ["batched vs bare", "default vs jacfwd"])
    param_names = ["n", "pair"]
    unit = "ratio"
    timeout = 120

    def setup(self, n, pair):
        x = _fn("jax", n)
        import jax

        self.sync = jax.block_until_ready
        if pair == "batched vs bare":
            self.a = lambda: nd.jacobian(_two, x, evaluation="batched")
            self.b = lambda: batched_central_difference(_two, x, 1e-5)
        else:
            self.a = lambda: nd.jacobian(_two, x)
            self.b = lambda: jax.jacfwd(_two)(x)

    def track_ratio(self, n, pair):
        return ratio_of_min_times(self.a, self.b, repeats=9, sync=self.sync)
