"""numdiffx's step rules vs the best fixed step found by trial, at equal stencils.

For each case the error of a step rule (``auto``: the default; ``bound``; ``adaptive``)
is compared with the error of the best of the decade steps 1e-1 ... 1e-12 of the SAME
stencil, found by trying them all against the exact derivative (what a user without a
step rule would have to do):

1. The reference set ``numdiffx.studies.PROBLEMS`` (float64, central, relative error,
   max over each problem's points). Targets: adaptive <= 1e-12 on the smooth problems;
   auto and bound <= 2x the best decade.
2. The report's 5-128-128-128-5 tanh MLP at x (100, 5) (the report: "JacrevFinite: Finite
   Difference approach to replacing PyTorch Autograd", B. Hendrata, 2024), central,
   float64 and float32: auto vs the best decade (target <= 2x), and the report's fixed
   delta 1e-5 for reference.
3. ``steps.adaptive()`` on that network, the SAME weights and input on numpy and torch
   (``numdiffx.studies.network_for``), float64 and float32 (targets 1e-13 and 2e-6), then
   float32 on four more weight seeds: one network is one sample, not a guarantee.

The adaptive dense tridiagonal Jacobian against scipy is in ``adaptive_vs_scipy_3point.py``,
the honesty of the error estimates in ``error_estimates_vs_true_error.py``.
Run: python asv_bench/compare/step_rules_vs_best_fixed_step.py
"""

from __future__ import annotations

import time

import numpy as np

import numdiffx as nd
from numdiffx.studies import PROBLEMS, Problem, make_mlp, network_for

DECADES = tuple(10.0 ** -k for k in range(1, 13))


def _rel(value: np.ndarray, exact: np.ndarray) -> float:
    return float(np.max(np.abs(value - exact) / np.abs(exact)))


def reference_set() -> None:
    print("1. reference set, float64, central: relative error (max over the problem's points)")
    print(f"   {'problem':18s} {'adaptive':>9s} {'nfev':>5s} {'auto':>9s} {'bound':>9s} "
          f"{'best dec':>9s} {'(step)':>7s} {'auto/best':>9s} {'bnd/best':>9s}")
    for p in PROBLEMS:
        x = np.asarray(p.points)
        exact = p.df(x)
        f = p.fn(np)
        r = nd.derivative(f, x, step=nd.steps.adaptive(typical=p.typical, scale_with_x=False),
                          full_output=True)
        auto = _rel(nd.derivative(f, x), exact)
        bound = _rel(nd.derivative(f, x, step=nd.steps.bound(typical=p.typical)), exact)
        fixed = {}
        for d in DECADES:
            v = nd.derivative(f, x, step=d)
            fixed[d] = _rel(v, exact) if np.all(np.isfinite(v)) else np.inf
        best = min(fixed, key=fixed.__getitem__)
        flag = "" if p.smooth else "  (not smooth/well conditioned)"
        ratios = (f"{auto / fixed[best]:9.2f} {bound / fixed[best]:9.2f}" if fixed[best] > 0
                  else f"{'(exact)':>9s} {'(exact)':>9s}")
        print(f"   {p.name:18s} {_rel(r.value, exact):9.2e} {r.nfev:5d} {auto:9.2e} "
              f"{bound:9.2e} {fixed[best]:9.2e} {best:7.0e} {ratios}{flag}")
    print("   adaptive: steps.adaptive(typical=problem.typical, scale_with_x=False); bound: "
          "steps.bound(typical=problem.typical); auto: the default step. Targets: adaptive "
          "<= 1e-12 on smooth problems, auto and bound <= 2x the best decade")


def network_auto() -> None:
    x64 = np.random.default_rng(0).standard_normal((100, 5))
    net64 = make_mlp("tanh")
    exact = net64.jacobian(x64)
    pattern = nd.SparsityPattern.per_sample((100, 5), (100, 5))  # the rows are independent
    print("2. the report's tanh MLP, x (100, 5), central: max |J - J_exact|")
    for dtype in ("float64", "float32"):
        net, x = net64.astype(dtype), x64.astype(dtype)

        def err(step: object, net=net, x=x) -> float:
            j = nd.jacobian(net, x, step=step, evaluation="batched", sparsity=pattern,
                            sparse_output=False)
            return float(np.max(np.abs(j - exact))) if np.all(np.isfinite(j)) else np.inf

        errs = {d: err(d) for d in DECADES[:10]}
        best = min(errs, key=errs.__getitem__)
        auto = err(None)
        print(f"   {dtype}: auto {auto:.2e}, best decade {errs[best]:.2e} (delta {best:.0e}), "
              f"auto/best {auto / errs[best]:.2f} (target <= 2); the report's fixed 1e-5: "
              f"{errs[1e-5]:.2e}")


def network_adaptive() -> None:
    x64 = np.random.default_rng(0).standard_normal((100, 5))
    print("3. steps.adaptive() on the tanh MLP, x (100, 5), evaluation='batched', the same "
          "weights and input on every backend")
    backends = ["numpy"]
    try:
        import torch  # noqa: F401

        backends.append("torch")
    except ImportError:
        pass
    for seed in range(5):
        net64 = make_mlp("tanh", seed=seed)
        for dtype, target in (("float64", 1e-13), ("float32", 2e-6)):
            if seed and dtype == "float64":
                continue
            # exact Jacobian of the network as the backend holds it: weights rounded to dtype
            exact = net64.astype(dtype).astype("float64").jacobian(
                x64.astype(dtype).astype(np.float64))
            for backend in backends if seed == 0 else ["numpy"]:
                net = network_for(net64, backend, dtype)
                t0 = time.perf_counter()
                r = nd.jacobian(net.f, net.asarray(x64), step=nd.steps.adaptive(),
                                evaluation="batched", full_output=True)
                dt = time.perf_counter() - t0
                err = np.abs(net.to_numpy(r.value).astype(np.float64) - exact)
                est = net.to_numpy(r.error).astype(np.float64)
                nonzero = exact != 0
                print(f"   weights seed {seed} {backend:6s} {dtype}: max error {err.max():.2e} "
                      f"(target <= {target:.0e}: {'met' if err.max() <= target else 'NOT met'})"
                      f"  nfev {r.nfev}  {dt:.2f} s  estimate >= error on "
                      f"{np.mean(est[nonzero] >= err[nonzero]):.1%} of the nonzeros")


def problem_names() -> list[str]:
    return [p.name for p in PROBLEMS]


__all__ = ["Problem", "network_adaptive", "network_auto", "problem_names", "reference_set"]

if __name__ == "__main__":
    np.seterr(all="ignore")  # large fixed steps leave some domains (log, 1/x): NaN is expected
    reference_set()
    network_auto()
    network_adaptive()
