"""The timing study as asv ``time_*``/``track_*``: Jacobians per backend and method, with
the error of each result.

The methods are the timing study's (``numdiffx.studies.timing``): autodiff, the report's
JacrevFinite algorithm (a batched forward difference, n + 1 points in one call) and numdiffx
forward (the same points: like for like), central and default. Each parameter is a
(backend: method) pair that runs (asv starts a process per combination, so none is wasted
on a skip). Data are built in ``setup`` from a fixed seed; absent backends raise
NotImplementedError (asv skips them); every callable runs once in ``setup`` so jit
compilation and other warm-up are not timed; outputs are synchronised.
"""

from __future__ import annotations

from numdiffx.studies import make_mlp
from numdiffx.studies.timing import _max_error, _methods, _problem

from ._common import SEED, mlp

_NUMDIFFX = ["jacrevfinite", "numdiffx forward", "numdiffx central", "numdiffx default"]
PAIRS = ([f"numpy: {m}" for m in _NUMDIFFX]
         + [f"torch: {m}" for m in ["torch.func.jacrev", "torch.func.jacfwd", *_NUMDIFFX]]
         + [f"jax: {m}" for m in ["jax.jit(jax.jacfwd)", "jax.jit(numdiffx forward)",
                                  *_NUMDIFFX]])


class _StudyCell:
    case = "two"

    def setup(self, pair, n):
        backend, method = pair.split(": ", 1)
        net, _ = mlp(backend, "tanh", "float64", 1)
        self.net, self.method = net, method
        self.problem = _problem(self.case, net, make_mlp("tanh", seed=SEED), n, "float64",
                                SEED)
        self.call = _methods(backend)[method](self.problem)
        self.value = net.sync(self.call())  # warm-up (jit compilation) excluded

    def time_jacobian(self, pair, n):
        self.net.sync(self.call())


class MLPJacobian(_StudyCell):
    """The report's tanh network, x (rows, 5) -> (rows, 5)."""

    case = "mlp"
    params = (PAIRS, [100])
    param_names = ["backend: method", "rows"]
    timeout = 120
    smoke_overrides = {"params": (PAIRS, [2])}  # tests/test_asv_smoke.py: small rows

    def track_max_error(self, pair, n):
        return _max_error(self.method, self.net, self.value, self.problem)

    track_max_error.unit = "abs error"  # type: ignore[attr-defined]


class ElementwiseJacobian(_StudyCell):
    """``two(x) = 2 x`` through a wrapper: the report's first timing case."""

    case = "two"
    params = (PAIRS, [10, 1000])
    param_names = ["backend: method", "n"]
