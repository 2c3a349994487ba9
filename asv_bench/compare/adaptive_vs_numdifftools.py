"""Adaptive steps vs numdifftools' default ``Derivative``: evaluations at equal accuracy.

For every problem of :data:`numdiffx.studies.PROBLEMS` and every one of its points x0
(float64, first derivative, one point per call), three estimators are run:

* ``nd``: ``nd.derivative(f, [x0], step=nd.steps.adaptive(typical=problem.typical,
  scale_with_x=False), full_output=True)`` (the hinted adaptive rule, as in
  ``step_rules_vs_best_fixed_step.py``);
* ``nd default``: the same with ``nd.steps.adaptive()`` (no hints);
* ``ndt``: ``numdifftools.Derivative(f)(x0)`` with every option at its default.

numdifftools' default (0.11.2, read from its source): ``method="central"``, ``order=2``,
``n=1``, ``step=None``, which selects ``MaxStepGenerator(base_step=2.0, step_ratio=2,
num_steps=15, offset=0, use_exact_steps=False)``, i.e. the fixed, non-adaptive sequence
``h_i = 2 * max(log(e + |x0|), 1) * 2**-i`` for i = 0..14 (from 2 * nom down to
1.2e-4 * nom). Each step costs the central difference ``f(x0 + h)`` and ``f(x0 - h)``
(f(x0) itself is not evaluated unless ``full_output=True``): always 30 evaluations of f,
one scalar per call. The 15 central differences are Richardson-extrapolated with
``richardson_terms=2`` (error terms h**2 and h**4 removed, ratio 2), then Wynn's epsilon
algorithm (``dea3``) is applied to the extrapolated sequence, and the estimate with the
smallest error estimate (outliers penalised) is returned. There is no stopping rule: the
cost does not depend on f or on the requested accuracy.

Measured per problem (errors: relative, max over the problem's points; evaluations: the
number of scalar points at which f was evaluated, summed over the problem's points; f is
wrapped in a counter that adds ``np.size(x)`` per call, so batched calls count fairly):

* ``err``/``pts`` for each estimator (``nfev`` is numdiffx' own count, for reference);
* ``est``: the estimator's own relative error estimate (``r.error`` for numdiffx, the
  ``error_estimate`` of a separate ``Derivative(f, full_output=True)`` call for numdifftools,
  whose points are not counted in ``pts``);
* ``ratio`` = nd pts / ndt pts;
* ``ok``: nd is at least as accurate as ndt (``err_nd <= 2 * max(err_ndt, eps)``: within a
  factor 2, both at round-off counting as equal; a NaN ndt estimate counts as less
  accurate) AND nd uses fewer points.

Where nd is less accurate than ndt, a fixed ladder of tighter tolerances
``rtol = 1e-12 ... 1e-15`` (the same ladder for every problem) is tried and the first
``rtol`` that matches ndt's accuracy is reported with its points (if none does, whether the
unhinted ``steps.adaptive()`` matches); the tightest ``rtol`` that matched anywhere is then
applied to every problem and summarised, so no problem is tuned silently.

Run: python asv_bench/compare/adaptive_vs_numdifftools.py
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import numdiffx as nd
from numdiffx.studies import PROBLEMS, Problem

try:
    import numdifftools as ndt
except ImportError:  # pragma: no cover - depends on the environment
    ndt = None

EPS = float(np.finfo(np.float64).eps)
RTOL_LADDER = (1e-12, 1e-13, 1e-14, 1e-15)


class Counted:
    """``f`` that counts scalar evaluation points (``np.size`` of every input) and calls."""

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f
        self.points = 0
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.points += int(np.size(x))
        self.calls += 1
        return self.f(x)


@dataclass
class Run:
    """One estimator on one problem: per-point relative errors and the costs."""

    errors: list[float]
    points: int = 0
    nfev: int = 0
    estimates: list[float] | None = None

    @property
    def err(self) -> float:
        """Worst relative error over the points (NaN if any estimate was not finite)."""
        e = np.asarray(self.errors)
        return float("nan") if np.any(np.isnan(e)) else float(np.max(e))

    @property
    def est(self) -> float:
        return float("nan") if not self.estimates else float(np.max(self.estimates))


def _rel(value: Any, exact: float) -> float:
    v = float(np.asarray(value).ravel()[0])
    return abs(v - exact) / abs(exact) if np.isfinite(v) else float("nan")


def _exact(p: Problem, x0: float) -> float:
    return float(p.df(np.array([x0]))[0])


def run_nd(p: Problem, rule: nd.steps.adaptive) -> Run:
    run = Run([], estimates=[])
    for x0 in p.points:
        f = Counted(p.fn(np))
        exact = _exact(p, x0)
        # the unhinted rule's first steps may leave the domain (log, sqrt near 0): NaN
        # there is expected and handled by the rule
        with np.errstate(all="ignore"):
            r = nd.derivative(f, np.array([x0]), step=rule, full_output=True)
        run.errors.append(_rel(r.value, exact))
        run.estimates.append(float(np.asarray(r.error).ravel()[0]) / abs(exact))
        run.points += f.points
        run.nfev += int(r.nfev)
    return run


def run_ndt(p: Problem) -> tuple[Run, list[str]]:
    run, notes = Run([], estimates=[]), []
    for x0 in p.points:
        f = Counted(p.fn(np))
        exact = _exact(p, x0)
        # steps up to 2 * log(e + |x0|) leave the domain of log/sqrt near 0 (numdifftools
        # silences the floating-point warnings itself, but warns on all-NaN sequences)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = ndt.Derivative(f)(x0)
            full = ndt.Derivative(p.fn(np), full_output=True)(x0)
        run.errors.append(_rel(value, exact))
        run.estimates.append(float(full.error_estimate) / abs(exact))
        run.points += f.points
        run.nfev += f.calls
        for msg in sorted({str(w.message) for w in caught}):
            notes.append(f"x0={x0:g}: {msg} (estimate {float(value):g})")
    return run, notes


def as_accurate(a: Run, b: Run) -> bool:
    """``a`` at least as accurate as ``b``: within 2x, round-off (eps) counting as equal."""
    if np.isnan(a.err):
        return False
    if np.isnan(b.err):
        return True
    return a.err <= 2.0 * max(b.err, EPS)


def hinted(p: Problem, rtol: float | None = None) -> nd.steps.adaptive:
    return nd.steps.adaptive(typical=p.typical, scale_with_x=False, rtol=rtol)


def _e(v: float) -> str:
    return f"{v:8.1e}" if np.isfinite(v) else f"{'NaN':>8s}"


def summary(label: str, rows: list[tuple[Run, Run]]) -> tuple[int, float]:
    wins = sum(as_accurate(a, b) and a.points < b.points for a, b in rows)
    median = float(np.median([a.points / b.points for a, b in rows]))
    print(f"   {label}: fewer points at equal-or-better accuracy on {wins}/{len(rows)} "
          f"problems; median ratio nd/ndt points {median:.2f}")
    return wins, median


def main() -> int:
    if ndt is None:
        print("numdifftools not installed: pip install numdifftools")
        return 0
    print(f"numdiffx {nd.__version__} adaptive vs numdifftools {ndt.__version__} default "
          "Derivative (central, MaxStepGenerator, 15 steps, Richardson 2 terms + Wynn)")
    print("float64 first derivatives; err = max relative error over the problem's points, "
          "pts = scalar points of f summed over them, est = the method's own error estimate")
    head = (f"{'problem':17s} {'n':>2s} | {'nd err':>8s} {'est':>8s} {'pts':>4s} {'nfev':>4s} | "
            f"{'ndt err':>8s} {'est':>8s} {'pts':>4s} | {'ratio':>5s} {'ok':3s} | "
            f"{'dflt err':>8s} {'pts':>4s} {'ratio':>5s} {'ok':3s}")
    print(head)
    print("-" * len(head))
    hinted_rows: list[tuple[Run, Run]] = []
    default_rows: list[tuple[Run, Run]] = []
    ndt_runs: dict[str, Run] = {}
    all_notes: list[str] = []
    for p in PROBLEMS:
        a = run_nd(p, hinted(p))
        d = run_nd(p, nd.steps.adaptive())
        b, notes = run_ndt(p)
        ndt_runs[p.name] = b
        all_notes += [f"{p.name} {n}" for n in notes]
        hinted_rows.append((a, b))
        default_rows.append((d, b))
        ok_a = "yes" if as_accurate(a, b) and a.points < b.points else "no"
        ok_d = "yes" if as_accurate(d, b) and d.points < b.points else "no"
        name = p.name + ("" if p.smooth else "*")
        print(f"{name:17s} {len(p.points):2d} | {_e(a.err)} {_e(a.est)} {a.points:4d} "
              f"{a.nfev:4d} | {_e(b.err)} {_e(b.est)} {b.points:4d} | "
              f"{a.points / b.points:5.2f} {ok_a:3s} | {_e(d.err)} {d.points:4d} "
              f"{d.points / b.points:5.2f} {ok_d:3s}")
    print("nd: steps.adaptive(typical=problem.typical, scale_with_x=False); dflt: "
          "steps.adaptive(); ndt: numdifftools.Derivative(f); * = not smooth (ill-conditioned)")
    for n in all_notes:
        print(f"   numdifftools warning: {n}")

    print("\nSummary")
    summary("nd (hinted) vs ndt", hinted_rows)
    summary("nd default  vs ndt", default_rows)

    print("\nWhere nd (hinted) is less accurate than ndt: the first rtol of the ladder "
          f"{RTOL_LADDER} that matches, else the unhinted steps.adaptive()")
    needed: list[float] = []
    for p, (a, b), (d, _) in zip(PROBLEMS, hinted_rows, default_rows):
        if as_accurate(a, b):
            continue
        worst = p.points[int(np.nanargmax(a.errors))]
        what = (f"{p.name:17s} nd err {_e(a.err)} (worst x0={worst:g}) > 2 x ndt err "
                f"{_e(b.err)} ({a.points} pts):")
        for rtol in RTOL_LADDER:
            t = run_nd(p, hinted(p, rtol))
            if as_accurate(t, b):
                needed.append(rtol)
                print(f"   {what} rtol={rtol:.0e} gives err {_e(t.err)} with {t.points} pts "
                      f"(ratio {t.points / b.points:.2f})")
                break
        else:
            fix = (f"steps.adaptive() does: err {_e(d.err)} with {d.points} pts (ratio "
                   f"{d.points / b.points:.2f})" if as_accurate(d, b) else
                   "nor does steps.adaptive()")
            print(f"   {what} no rtol of the ladder matches (err {_e(t.err)}, {t.points} pts at "
                  f"rtol={RTOL_LADDER[-1]:.0e}); {fix}")
    if not needed:
        return 0
    rtol = min(needed)
    rows = [(run_nd(p, hinted(p, rtol)), ndt_runs[p.name]) for p in PROBLEMS]
    print(f"The same tighter tolerance on every problem (rtol={rtol:.0e}):")
    for p, (t, b) in zip(PROBLEMS, rows):
        mark = "" if as_accurate(t, b) else "  less accurate"
        print(f"   {p.name:17s} err {_e(t.err)} pts {t.points:4d} ratio "
              f"{t.points / b.points:5.2f}{mark}")
    summary(f"nd (hinted, rtol={rtol:.0e}) vs ndt", rows)
    return 0

if __name__ == "__main__":
    sys.exit(main())
