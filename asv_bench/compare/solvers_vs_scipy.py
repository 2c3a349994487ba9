"""numdiffx vs SciPy's own finite differences inside SciPy's solvers, measured in one run.

Compared like with like, on the problems of ``asv_bench/benchmarks/_solver_problems.py``
(19 Moré-Garbow-Hillstrom least squares + 4 sparse ones at n = 1000, 3 stiff ODEs under
BDF and Radau, 2 Newton minimisations):

1. Points per derivative: numdiffx ``forward`` vs SciPy ``'2-point'``, numdiffx
   ``central`` vs ``'3-point'`` -- both reuse the solver's f(x) (numdiffx through the
   ``.fun`` wrapper of its ``numdiffx.scipy`` callables). Sparse problems: the same
   pattern given to both. Also ``steps.adaptive()`` and numdifftools, against central.
2. Solver outcomes: iterations (Jacobians, steps, Newton iterations) and the answer,
   each provider against the same solver on the exact derivatives.
3. Wall time of the whole solve (the minimum of ``--repeat`` runs; noisy on a shared
   machine), numdiffx over SciPy of the same order.
4. Per-call overhead: one Jacobian at x0 with f(x0) known, numdiffx vs
   ``approx_derivative(f0=...)`` (same points), and where numdiffx spends the time
   (cProfile of one small call).

Targets (issue 21): points <= SciPy's own FD of the same order on every problem, fewer
with a sparsity pattern; solver outcomes unchanged against exact derivatives; wall time
<= 1.2x SciPy's own FD (the per-call overhead part depends on the engine's speed).
Run: python asv_bench/compare/solvers_vs_scipy.py [--repeat 3] [--quick]
(``--quick``: a few problems, one repeat). The asv suite is ``bench_solvers.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from _harness import best_times, verdict

import numdiffx as nd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _solver_problems as problems  # noqa: E402
from benchmarks import _solver_runs as runs  # noqa: E402

TIMED = ("exact", "scipy-2point", "scipy-3point", "numdiffx-forward", "numdiffx-central")


def _geomean(values: Sequence[float]) -> float:
    vals = [v for v in values if v > 0 and np.isfinite(v)]
    return float(np.exp(np.mean(np.log(vals)))) if vals else float("nan")


def _measure(run: Callable[[str], runs.Run], providers: Sequence[str], repeat: int
             ) -> dict[str, runs.Run]:
    """Each provider's first run (the counts; a warm-up too); the solves of ``TIMED`` are
    then timed interleaved, ``repeat`` rounds, the minimum kept."""
    out: dict[str, runs.Run] = {}
    for provider in providers:
        try:
            out[provider] = run(provider)
        except NotImplementedError:
            continue
    if repeat > 1:
        timed = {p: (lambda p=p: run(p)) for p in out if p in TIMED}
        for name, (seconds, _) in best_times(timed, repeats=repeat - 1, warmup=0).items():
            out[name].seconds = min(out[name].seconds, seconds)
    return out


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    print()


def _pts(r: dict[str, runs.Run], p: str) -> str:
    return f"{r[p].points:.3g}" if p in r else "-"


def _same(a: runs.Run, b: runs.Run) -> bool:
    return a.iterations == b.iterations


# ---------------------------------------------------------------------------------------
def least_squares(repeat: int, quick: bool) -> dict[str, list[float]]:
    print("## 1. least_squares (trf): points per Jacobian, Jacobians, answer, time\n")
    probs = problems.LEAST_SQUARES + problems.sparse_least_squares(1000)
    if quick:
        probs = [probs[0], probs[17], probs[-1]]
    rows, stats = [], {k: [] for k in ("fwd", "cen", "tfwd", "tcen", "adapt", "ndt", "same_f",
                                       "same_c", "same_s", "size")}
    for p in probs:
        r = _measure(lambda prov, p=p: runs.least_squares(p, prov), runs.PROVIDERS, repeat)
        ex = r["exact"]
        fwd = r["numdiffx-forward"].points / r["scipy-2point"].points
        cen = r["numdiffx-central"].points / r["scipy-3point"].points
        tf = r["numdiffx-forward"].seconds / r["scipy-2point"].seconds
        tc = r["numdiffx-central"].seconds / r["scipy-3point"].seconds
        stats["fwd"].append(fwd)
        stats["cen"].append(cen)
        stats["tfwd"].append(tf)
        stats["tcen"].append(tc)
        stats["adapt"].append(r["numdiffx-adaptive"].points / r["numdiffx-central"].points)
        if "numdifftools" in r:
            stats["ndt"].append(r["numdifftools"].points / r["numdiffx-central"].points)
        stats["same_f"].append(_same(r["numdiffx-forward"], ex))
        stats["same_c"].append(_same(r["numdiffx-central"], ex))
        stats["same_s"].append(_same(r["scipy-2point"], ex))
        stats["size"].append(p.n)
        scale = max(1.0, float(np.max(np.abs(ex.answer))))
        dx = " / ".join(f"{np.max(np.abs(r[k].answer - ex.answer)) / scale:.0e}"
                        for k in ("scipy-2point", "numdiffx-forward", "numdiffx-central"))
        f_values = f"{ex.value:.6g} / {r['numdiffx-forward'].value:.6g}"
        rows.append([p.name, str(p.n), f"{_pts(r, 'scipy-2point')} / {_pts(r, 'numdiffx-forward')}",
                     f"{_pts(r, 'scipy-3point')} / {_pts(r, 'numdiffx-central')}",
                     f"{_pts(r, 'numdiffx-adaptive')} / {_pts(r, 'numdifftools')}",
                     " / ".join(str(r[k].iterations) for k in ("exact", "scipy-2point",
                                                                "numdiffx-forward",
                                                                "numdiffx-central")),
                     f_values, dx, f"{tf:.2f} / {tc:.2f}"])
    _table(["problem", "n", "pts 2-point / nd fwd", "pts 3-point / nd central",
            "pts nd adaptive / numdifftools", "Jacobians exact/2pt/fwd/central",
            "sum f_i^2 exact / fwd", "|x - x_exact| 2pt/fwd/central",
            "time fwd/2pt, central/3pt"], rows)
    print(f"points, numdiffx / SciPy of the same order: forward geomean "
          f"{_geomean(stats['fwd']):.3f} (max {max(stats['fwd']):.3f}), central geomean "
          f"{_geomean(stats['cen']):.3f} (max {max(stats['cen']):.3f})")
    print(f"same number of Jacobians as with exact ones: numdiffx forward "
          f"{sum(stats['same_f'])}/{len(probs)}, central {sum(stats['same_c'])}/{len(probs)}, "
          f"SciPy 2-point {sum(stats['same_s'])}/{len(probs)}")
    print(f"wall time, numdiffx / SciPy: forward geomean {_geomean(stats['tfwd']):.2f}, central "
          f"geomean {_geomean(stats['tcen']):.2f}\n")
    return stats


# ---------------------------------------------------------------------------------------
def odes(repeat: int, quick: bool) -> dict[str, list[float]]:
    print("## 2. solve_ivp: points per Jacobian, Jacobians, steps, answer, time\n")
    rows, stats = [], {"pts": [], "time": [], "same": []}
    for o in problems.odes()[: 2 if quick else 3]:
        for method in ("BDF", "Radau"):
            r = _measure(lambda prov, o=o, m=method: runs.ode(o, prov, m),
                         ("exact", "scipy-2point", "numdiffx-forward", "numdiffx-central",
                          "numdifftools"), repeat)
            ex = r["exact"]
            scale = o.atol + o.rtol * np.abs(ex.answer)
            err = {k: float(np.max(np.abs(v.answer - ex.answer) / scale)) for k, v in r.items()}
            ratio = r["numdiffx-forward"].points / r["scipy-2point"].points
            t = r["numdiffx-forward"].seconds / r["scipy-2point"].seconds
            stats["pts"].append(ratio)
            stats["time"].append(t)
            stats["same"].append(r["numdiffx-forward"].iterations == ex.iterations)
            rows.append([f"{o.name}/{method}", str(o.y0.size),
                         f"{_pts(r, 'scipy-2point')} / {_pts(r, 'numdiffx-forward')} / "
                         f"{_pts(r, 'numdiffx-central')} / {_pts(r, 'numdifftools')}",
                         " / ".join(str(r[k].derivatives) for k in ("exact", "scipy-2point",
                                                                     "numdiffx-forward")),
                         " / ".join(str(r[k].iterations) for k in ("exact", "scipy-2point",
                                                                    "numdiffx-forward")),
                         " / ".join(str(r[k].evaluations) for k in ("exact", "scipy-2point",
                                                                     "numdiffx-forward")),
                         f"{err['scipy-2point']:.1g} / {err['numdiffx-forward']:.1g}",
                         f"{t:.2f}"])
    _table(["problem/method", "n", "pts SciPy / nd fwd / nd central / numdifftools",
            "Jacobians exact/SciPy/fwd", "steps exact/SciPy/fwd", "f calls exact/SciPy/fwd",
            "|y_end - exact| / tol SciPy/fwd", "time fwd/SciPy"], rows)
    print(f"points, numdiffx forward / SciPy's num_jac: geomean {_geomean(stats['pts']):.3f} "
          f"(max {max(stats['pts']):.3f}); same steps as exact: {sum(stats['same'])}/"
          f"{len(rows)}; wall time geomean {_geomean(stats['time']):.2f}\n")
    return stats


# ---------------------------------------------------------------------------------------
def minimisation(repeat: int, quick: bool) -> dict[str, list[float]]:
    print("## 3. minimize: points per gradient / Hessian / product, iterations, answer, time\n")
    rows, stats = [], {"fwd": [], "cen": [], "tfwd": [], "adapt": []}
    for m in problems.minimisations():
        for method in ("trust-exact", "Newton-CG", "BFGS"):
            if quick and method == "BFGS":
                continue
            r = _measure(lambda prov, m=m, meth=method: runs.minimise(m, prov, meth),
                         runs.PROVIDERS, repeat)
            ex = r["exact"]
            stats["fwd"].append(r["numdiffx-forward"].points / r["scipy-2point"].points)
            stats["cen"].append(r["numdiffx-central"].points / r["scipy-3point"].points)
            stats["tfwd"].append(r["numdiffx-forward"].seconds / r["scipy-2point"].seconds)
            stats["adapt"].append(r["numdiffx-adaptive"].points / r["numdiffx-central"].points)
            dx = " / ".join(f"{np.max(np.abs(r[k].answer - ex.answer)):.0e}"
                            for k in ("scipy-2point", "numdiffx-forward", "numdiffx-central"))
            rows.append([f"{m.name}/{method}", str(m.x0.size),
                         f"{_pts(r, 'scipy-2point')} / {_pts(r, 'numdiffx-forward')}",
                         f"{_pts(r, 'scipy-3point')} / {_pts(r, 'numdiffx-central')}",
                         f"{_pts(r, 'numdiffx-adaptive')} / {_pts(r, 'numdifftools')}",
                         " / ".join(str(r[k].iterations) for k in ("exact", "scipy-2point",
                                                                    "numdiffx-forward",
                                                                    "numdiffx-central")),
                         " / ".join(str(r[k].evaluations) for k in ("exact", "scipy-2point",
                                                                     "numdiffx-forward")),
                         dx, "".join("y" if r[k].success else "n" for k in
                                     ("exact", "scipy-2point", "numdiffx-forward",
                                      "numdiffx-central")),
                         f"{stats['tfwd'][-1]:.2f}"])
    _table(["problem/method", "n", "pts 2-point / nd fwd", "pts 3-point / nd central",
            "pts nd adaptive / numdifftools", "iterations exact/2pt/fwd/central",
            "calls exact/2pt/fwd", "|x - x_exact| 2pt/fwd/central", "success e/2/f/c",
            "time fwd/2pt"], rows)
    print("(BFGS: the gradient from values of f; trust-exact: the Hessian from the gradient "
          "-- SciPy refuses hess='2-point' there, so its row is approx_derivative(grad) with "
          "g(x) evaluated again, n+1; Newton-CG: products from the gradient)")
    print(f"points, numdiffx / SciPy of the same order: forward geomean "
          f"{_geomean(stats['fwd']):.3f} (max {max(stats['fwd']):.3f}), central geomean "
          f"{_geomean(stats['cen']):.3f} (max {max(stats['cen']):.3f}); wall time forward "
          f"geomean {_geomean(stats['tfwd']):.2f}\n")
    return stats


# ---------------------------------------------------------------------------------------
def overhead(quick: bool) -> None:
    from scipy.optimize._numdiff import approx_derivative, group_columns

    print("## 4. One Jacobian at x0 with f(x0) known: per-call overhead\n")
    cases = [problems.LEAST_SQUARES[0], problems.LEAST_SQUARES[17],
             problems.sparse_least_squares(1000)[2]]
    rows = []
    for p in cases[:2] if quick else cases:
        f0 = p.fun(p.x0)
        sparsity = None if p.sparsity is None else (p.sparsity, group_columns(p.sparsity))
        per_eval = _per_call({"f": lambda p=p: p.fun(p.x0)}, 2000)["f"]
        for order, method in (("2-point", "forward"), ("3-point", "central")):
            J = nd.scipy.Jacobian(p.fun, method=method, sparsity=p.sparsity)
            J.fun(p.x0)
            J(p.x0)  # the pattern is normalised at the first call; time the later ones
            t = _per_call({"nd": lambda J=J, p=p: J(p.x0),
                           "sp": lambda p=p, f0=f0, o=order, s=sparsity: approx_derivative(
                               p.fun, p.x0, method=o, f0=f0, sparsity=s)}, 200)
            t_nd, t_sp = t["nd"], t["sp"]
            rows.append([p.name, str(p.n), order, f"{t_sp * 1e6:.0f}", f"{t_nd * 1e6:.0f}",
                         f"{(t_nd - t_sp) * 1e6:.0f}", f"{t_nd / t_sp:.2f}",
                         f"{per_eval * 1e6:.1f}"])
    _table(["problem", "n", "order", "SciPy us", "numdiffx us", "overhead us", "ratio",
            "one f(x) us"], rows)
    p = problems.LEAST_SQUARES[0]
    J = nd.scipy.Jacobian(p.fun)
    J.fun(p.x0)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(500):
        J(p.x0)
    prof.disable()
    stats = pstats.Stats(prof)
    total = max(stats.total_tt, 1e-12)  # type: ignore[attr-defined]
    print("where one small forward Jacobian (rosenbrock, n = 2) spends its time "
          "(cProfile, cumulative, share of the call):")
    entries = []
    for (file, _line, name), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "numdiffx/_core" in file or "numdiffx/backends" in file:
            short = file.split("numdiffx/")[-1]
            entries.append((cum, f"{short}:{name}"))
    for cum, label in sorted(entries, reverse=True)[:16]:
        print(f"  {100 * cum / total:5.1f}%  {label}")
    print("(the rest: numdiffx.scipy's wrapper and memory, and f itself)\n")


def _per_call(funs: dict[str, Callable[[], object]], number: int) -> dict[str, float]:
    """Seconds per call of each, ``number`` calls per timing, interleaved, min of 7."""
    loops = {k: (lambda f=f: [f() for _ in range(number)]) for k, f in funs.items()}
    return {k: t / number for k, (t, _) in best_times(loops, repeats=7).items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per solve (min)")
    parser.add_argument("--quick", action="store_true", help="a few problems, one repeat")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else max(1, args.repeat)
    print(f"numdiffx {nd.__version__}; numpy {np.__version__}; "
          f"scipy {__import__('scipy').__version__}\n")
    ls = least_squares(repeat, args.quick)
    ode = odes(repeat, args.quick)
    mins = minimisation(repeat, args.quick)
    adapt = ls["adapt"] + mins["adapt"]
    print(f"steps.adaptive() costs {min(adapt):.1f}-{max(adapt):.1f}x the points of central "
          f"(median {np.median(adapt):.1f}x)")
    if ls["ndt"]:
        print(f"numdifftools costs {min(ls['ndt']):.0f}-{max(ls['ndt']):.0f}x the points of "
              f"numdiffx central (median {np.median(ls['ndt']):.0f}x)")
    print()
    overhead(args.quick)
    points = ls["fwd"] + ls["cen"] + ode["pts"] + mins["fwd"] + mins["cen"]
    sparse = [r for r, n in zip(ls["fwd"], ls["size"]) if n >= 1000]
    times = ls["tfwd"] + ode["time"] + mins["tfwd"]
    print("Targets (issue 21):")
    print(f"  points <= SciPy's own FD of the same order on every problem: "
          f"{verdict(max(points) <= 1.0)} (max ratio {max(points):.3f})")
    print(f"  sparse: fewer points than SciPy with the same pattern: "
          f"{verdict(bool(sparse) and min(sparse) < 1.0)} (ratios "
          f"{', '.join(f'{r:.2f}' for r in sparse)})")
    print(f"  solver outcomes as with exact derivatives: least squares "
          f"{sum(ls['same_f'])}/{len(ls['same_f'])} (forward), ODE steps "
          f"{sum(ode['same'])}/{len(ode['same'])} -- see the tables for the exceptions")
    print(f"  wall time <= 1.2x SciPy's own FD: {verdict(_geomean(times) <= 1.2)} (geomean "
          f"{_geomean(times):.2f}, range {min(times):.2f}-{max(times):.2f}; the per-call "
          "overhead above)")


if __name__ == "__main__":
    main()
