"""Step rules as asv ``track_*``: errors, evaluation counts and honesty of the estimates.

What ``asv_bench/compare/step_rules_vs_best_fixed_step.py`` and
``error_estimates_vs_true_error.py`` print: per reference problem the adaptive error, its
nfev and estimate / true error, and auto's error over the best decade step of the same
stencil; on the report's tanh MLP (x (100, 5), the same weights on numpy and torch) the
adaptive error and nfev per backend and dtype, and auto / the best decade. Everything is
computed once in ``setup_cache``; each tracked number is read from it.
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd
from numdiffx.studies import PROBLEMS, make_mlp
from numdiffx.studies._networks import backend_available, network_for

from ._common import SEED

DECADES = tuple(10.0 ** -k for k in range(1, 13))


def _rel(value, exact):
    return float(np.max(np.abs(value - exact) / np.abs(exact)))


def _reference_problem(p):
    x = np.asarray(p.points)
    exact, f = p.df(x), p.fn(np)
    with np.errstate(all="ignore"):
        r = nd.derivative(f, x, step=nd.steps.adaptive(typical=p.typical, scale_with_x=False),
                          full_output=True)
        fixed = [nd.derivative(f, x, step=d) for d in DECADES]
    best = min(_rel(v, exact) for v in fixed if np.all(np.isfinite(v)))
    err = np.abs(r.value - exact)
    return {"adaptive_rel_error": _rel(r.value, exact), "adaptive_nfev": int(r.nfev),
            "estimate_over_error": float(np.min(np.asarray(r.error)
                                                / np.maximum(err, 1e-300))),
            "auto_over_best_decade": (_rel(nd.derivative(f, x), exact) / best
                                      if best > 0 else 1.0)}


class ReferenceProblem:
    """One problem of ``numdiffx.studies.PROBLEMS``, float64, central."""

    params = [[p.name for p in PROBLEMS]]
    param_names = ["problem"]

    def setup_cache(self):
        return {p.name: _reference_problem(p) for p in PROBLEMS}

    def track_adaptive_rel_error(self, cache, name):
        return cache[name]["adaptive_rel_error"]

    track_adaptive_rel_error.unit = "rel error"  # type: ignore[attr-defined]

    def track_adaptive_nfev(self, cache, name):
        return cache[name]["adaptive_nfev"]

    track_adaptive_nfev.unit = "points"  # type: ignore[attr-defined]

    def track_adaptive_estimate_over_error(self, cache, name):
        """Honesty: >= 1 when the estimate covers the true error at every point."""
        return cache[name]["estimate_over_error"]

    track_adaptive_estimate_over_error.unit = "ratio"  # type: ignore[attr-defined]

    def track_auto_over_best_decade(self, cache, name):
        return cache[name]["auto_over_best_decade"]

    track_auto_over_best_decade.unit = "ratio"  # type: ignore[attr-defined]


class NetworkAdaptive:
    """``steps.adaptive()`` on the report's tanh MLP, x (rows, 5), dense batched Jacobian,
    the same weights on numpy and torch (targets: 1e-13 in float64, 2e-6 in float32)."""

    params = (["numpy", "torch"], ["float64", "float32"])
    param_names = ["backend", "dtype"]
    rows = 100
    timeout = 300
    smoke_overrides = {"rows": 3}  # tests/test_asv_smoke.py runs the code path small

    def setup_cache(self):
        net64 = make_mlp("tanh", seed=SEED)
        x64 = np.random.default_rng(SEED).standard_normal((self.rows, 5))
        out = {}
        for backend in self.params[0]:
            if not backend_available(backend):
                continue
            for dtype in self.params[1]:
                net = network_for(net64, backend, dtype)
                exact = net64.astype(dtype).astype("float64").jacobian(
                    x64.astype(dtype).astype(np.float64))
                r = nd.jacobian(net.f, net.asarray(x64), step=nd.steps.adaptive(),
                                evaluation="batched", full_output=True)
                value = net.to_numpy(r.value).astype(np.float64)
                out[backend, dtype] = {"max_error": float(np.max(np.abs(value - exact))),
                                       "nfev": int(r.nfev)}
        return out

    def setup(self, cache, backend, dtype):
        if (backend, dtype) not in cache:
            raise NotImplementedError(f"{backend} is not installed")

    def track_max_error(self, cache, backend, dtype):
        return cache[backend, dtype]["max_error"]

    track_max_error.unit = "abs error"  # type: ignore[attr-defined]

    def track_nfev(self, cache, backend, dtype):
        return cache[backend, dtype]["nfev"]

    track_nfev.unit = "points"  # type: ignore[attr-defined]


class NetworkAutoVsBestDecade:
    """auto's max error / the best decade step's on the tanh MLP (central, numpy)."""

    params = [["float64", "float32"]]
    param_names = ["dtype"]
    unit = "ratio"

    def track_auto_over_best_decade(self, dtype):
        net64 = make_mlp("tanh", seed=SEED)
        x64 = np.random.default_rng(SEED).standard_normal((100, 5))
        exact = net64.jacobian(x64)
        net, x = net64.astype(dtype), x64.astype(dtype)
        pattern = nd.SparsityPattern.per_sample((100, 5), (100, 5))

        def err(step):
            j = nd.jacobian(net, x, step=step, evaluation="batched", sparsity=pattern,
                            sparse_output=False)
            return float(np.max(np.abs(j - exact))) if np.all(np.isfinite(j)) else np.inf

        return err(None) / min(err(d) for d in DECADES[:10])
