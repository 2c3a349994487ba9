"""The timing study as asv ``time_*``/``peakmem_*``: Jacobians per backend x method x size.

Data are built in ``setup`` from a fixed seed; absent backends raise NotImplementedError
(asv skips them); every callable is called once in ``setup`` so jit compilation and
other warm-up is excluded from the timed region. Outputs are synchronised.
"""

from __future__ import annotations

import numpy as np

from numdiffx import jacobian
from numdiffx.studies.timing import jacrev_finite

from ._common import SEED, mlp, require

METHODS = ["numdiffx[batched]", "numdiffx[loop]", "jacrevfinite", "autodiff"]


def _autodiff(backend, f, x):
    if backend == "torch":
        import torch.func

        return lambda: torch.func.jacrev(f)(x)
    if backend == "jax":
        import jax

        g = jax.jit(jax.jacfwd(f))
        return lambda: g(x)
    raise NotImplementedError("numpy has no autodiff")


def _build(backend, method, f, x):
    if method == "autodiff":
        return _autodiff(backend, f, x)
    if method == "jacrevfinite":
        return lambda: jacrev_finite(f, x)
    mode = method[len("numdiffx["):-1]
    return lambda: jacobian(f, x, evaluation=mode)


class MLPJacobian:
    """The report's network Jacobian, (rows, 5) -> (rows, 5)."""

    params = (["numpy", "torch", "jax"], METHODS, [10, 100])
    param_names = ["backend", "method", "rows"]
    timeout = 120

    def setup(self, backend, method, rows):
        if method == "numdiffx[loop]" and rows > 10:
            raise NotImplementedError("loop mode only timed at small sizes")
        net, x = mlp(backend, "tanh", "float64", rows)
        self.net = net
        self.call = _build(backend, method, net.f, x)
        net.sync(self.call())  # warm-up (jit compile) excluded

    def time_jacobian(self, backend, method, rows):
        self.net.sync(self.call())

    def peakmem_jacobian(self, backend, method, rows):
        self.call()


class ElementwiseJacobian:
    """``two(x) = 2 x`` through a wrapper: the report's smallest case, at larger n."""

    params = (["numpy", "torch", "jax"], METHODS, [10, 100, 1000])
    param_names = ["backend", "method", "n"]

    def setup(self, backend, method, n):
        if method == "numdiffx[loop]" and n > 100:
            raise NotImplementedError("loop mode only timed at small sizes")
        net, _ = mlp(backend, "tanh", "float64", 1)
        require(backend)
        x = net.asarray(np.random.default_rng(SEED).standard_normal(n))

        def two(x):
            return 2 * x

        self.net = net
        self.call = _build(backend, method, two, x)
        net.sync(self.call())

    def time_jacobian(self, backend, method, n):
        self.net.sync(self.call())
