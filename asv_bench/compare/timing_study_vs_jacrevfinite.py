"""numdiffx forward vs the JacrevFinite algorithm on the timing study's cases, interleaved.

The cases of ``numdiffx study timing`` (``numdiffx.studies.timing``): the report's
``two(x) = 2 x``, ``x + y`` and ``x * y`` through a Python wrapper at n = 10, 100, 1000,
and its 5-128-128-128-5 tanh MLP at 1, 10 and 100 rows (the report is "JacrevFinite:
Finite Difference approach to replacing PyTorch Autograd", B. Hendrata, 2024), float64.
Compared: ``nd.jacobian(f, x, y, method="forward", evaluation="batched")`` against the
report's algorithm (:func:`numdiffx.studies.timing.jacrev_finite`: x and its n copies in ONE
call, a fixed delta = 1e-5), and ``torch.func.jacrev`` where torch is installed. The study
times each method in turn; here the methods alternate within each repeat (min of 15),
so a busy machine disturbs both sides alike.

Targets (issue 17): numdiffx forward <= 1.3x JacrevFinite at the report's cases (two, add,
mul), and faster than ``torch.func.jacrev`` where the report found FD faster (add and mul
through a wrapper, its small sizes). The MLP rows are printed for information: at one row
f(x) evaluated on its own (the check that f does not mix the rows of a batch) costs as
much as the whole batch, which the report's algorithm never checks.
Run: python asv_bench/compare/timing_study_vs_jacrevfinite.py [numpy|torch ...]
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from _harness import best_times, ms, verdict

import numdiffx as nd
from numdiffx.studies import make_mlp, network_for
from numdiffx.studies.timing import jacrev_finite

REPORT_CASES = ("two", "add", "mul")


def _wrapped(fn: Any) -> Any:
    def wrapper(*args: Any) -> Any:  # the report's "with wrapper": a user's closure
        return fn(*args)
    return wrapper


FUNS = {"two": (_wrapped(lambda x: 2 * x), 1), "add": (_wrapped(lambda x, y: x + y), 2),
        "mul": (_wrapped(lambda x, y: x * y), 2)}


def cases(backend: str) -> list[tuple[str, int, Any, tuple[Any, ...]]]:
    net = network_for(make_mlp("tanh"), backend)
    rng = np.random.default_rng(0)
    out = []
    for case, (fn, nargs) in FUNS.items():
        for n in (10, 100, 1000):
            out.append((case, n, fn, tuple(net.asarray(rng.standard_normal(n))
                                           for _ in range(nargs))))
    for rows in (1, 10, 100):
        out.append(("mlp", rows, net.f, (net.asarray(rng.standard_normal((rows, 5))),)))
    return out


def main(backends: list[str]) -> None:
    print("numdiffx forward (batched) / the JacrevFinite algorithm, same f and x, float64, "
          "min of 15 interleaved runs after a warm-up")
    print(f"{'backend':7s} {'case':5s} {'n':>5s} {'jrf ms':>9s} {'numdiffx':>9s} {'ratio':>6s}"
          f" {'jacrev ms':>9s}  target <= 1.3x (report cases); faster than jacrev (add, mul)")
    for backend in backends:
        funs_extra: dict[str, Any] = {}
        if backend == "torch":
            import torch.func

            funs_extra["jacrev"] = torch.func.jacrev
        for case, n, f, args in cases(backend):
            runs = {"jrf": lambda f=f, args=args: jacrev_finite(f, *args),
                    "nd": lambda f=f, args=args: nd.jacobian(f, *args, method="forward",
                                                            evaluation="batched")}
            if "jacrev" in funs_extra:
                jacrev = funs_extra["jacrev"]
                runs["jacrev"] = lambda f=f, args=args, jacrev=jacrev: jacrev(f)(*args)
            res = best_times(runs, repeats=15 if n <= 100 or case != "mlp" else 3)
            (t_j, j_j), (t_n, j_n) = res["jrf"], res["nd"]
            gap = float(np.max(np.abs(np.asarray(j_n) - np.asarray(j_j))))
            assert gap < 1e-3, f"the two differ by {gap}: not the same Jacobian"
            t_r = res["jacrev"][0] if "jacrev" in res else float("nan")
            if case in REPORT_CASES:
                ok = t_n <= 1.3 * t_j
                if case != "two" and n <= 100 and "jacrev" in res:  # where FD won the report
                    ok = ok and t_n < t_r
                note = verdict(ok)
            else:
                note = "(beyond the report)"
            print(f"{backend:7s} {case:5s} {n:5d} {ms(t_j)} {ms(t_n)} {t_n / t_j:6.2f} "
                  f"{ms(t_r)}  {note}")


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["numpy", "torch"]
    try:
        import torch  # noqa: F401
    except ImportError:
        wanted = [b for b in wanted if b != "torch"]
        print("torch not installed: numpy only")
    main(wanted)
