"""A real third-party test suite: ``torch.autograd.gradcheck`` vs ``nd.gradcheck`` swapped in.

The suite runs twice, once with each checker. Compares like with like: the same tests, the same
keywords, the same machine, one after the other.

The suite is NOT part of numdiffx: PATH is an existing checkout of kornia's repository
(its ``tests/``), with kornia importable in the environment.

Run: ``python asv_bench/compare/gradcheck_suite_torch_vs_nd.py PATH``, e.g.

    python asv_bench/compare/gradcheck_suite_torch_vs_nd.py /tmp/kornia
    python asv_bench/compare/gradcheck_suite_torch_vs_nd.py /tmp/kornia -- -k grad tests/geometry

Everything after ``--`` goes to pytest (default ``-k gradcheck tests``). The swap is a
pytest plugin (``_gradcheck_swap_plugin.py``) that replaces ``torch.autograd.gradcheck``
and ``gradgradcheck`` before the suite imports them -- the one import a downstream library
would change -- and times every call. Printed: tests passing with each checker, every
disagreement with numdiffx's first error line (its verdict and likely cause), and the
total time spent inside the checkers. Timings are wall-clock on a shared machine: run
twice and take the smaller.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def run_suite(checkout: Path, mode: str, pytest_args: list[str]) -> dict[str, dict[str, Any]]:
    """Run the suite with one checker; {test id: calls, seconds, outcome, error}."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / f"{mode}.json"
        env = dict(os.environ, ND_SWAP_MODE=mode, ND_SWAP_RECORD=str(record),
                   PYTHONPATH=os.pathsep.join([str(HERE), str(REPO),
                                               os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "pytest", "-p", "_gradcheck_swap_plugin", "-q",
               "-p", "no:cacheprovider", "--color=no", *pytest_args]
        subprocess.run(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        return json.loads(record.read_text()) if record.exists() else {}


def table(torch_run: dict[str, dict[str, Any]], nd_run: dict[str, dict[str, Any]]) -> str:
    ids = sorted(i for i in set(torch_run) | set(nd_run)
                 if torch_run.get(i, {}).get("calls") or nd_run.get(i, {}).get("calls"))
    def count(run: dict[str, dict[str, Any]], outcome: str) -> int:
        return sum(run.get(i, {}).get("outcome") == outcome for i in ids)

    calls_t = sum(torch_run.get(i, {}).get("calls", 0) for i in ids)
    calls_n = sum(nd_run.get(i, {}).get("calls", 0) for i in ids)
    both = [i for i in ids if torch_run.get(i, {}).get("outcome") == "passed"
            and nd_run.get(i, {}).get("outcome") == "passed"]
    t_torch = sum(torch_run[i]["seconds"] for i in both)
    t_nd = sum(nd_run[i]["seconds"] for i in both)
    lines = [
        f"tests calling gradcheck/gradgradcheck: {len(ids)} ({calls_t} calls with torch, "
        f"{calls_n} with numdiffx)",
        f"{'':<28}{'torch':>10}{'numdiffx':>10}",
        f"{'passed':<28}{count(torch_run, 'passed'):>10}{count(nd_run, 'passed'):>10}",
        f"{'failed':<28}{count(torch_run, 'failed'):>10}{count(nd_run, 'failed'):>10}",
        f"{'skipped':<28}{count(torch_run, 'skipped'):>10}{count(nd_run, 'skipped'):>10}",
        f"time inside the checker, on the {len(both)} tests both pass: torch {t_torch:.2f} s, "
        f"numdiffx {t_nd:.2f} s, ratio {t_nd / max(t_torch, 1e-9):.2f}",
    ]
    lines += disagreements(ids, both, "torch", torch_run, nd_run)
    return "\n".join(lines)


def disagreements(ids: list[str], both: list[str], name: str, ref_run: dict[str, Any],
                  nd_run: dict[str, Any]) -> list[str]:
    """The report's tail, shared with the jax suite script: each test whose outcome differs
    between the framework's checker (``name``) and numdiffx's, and numdiffx's five slowest."""
    disagree = [i for i in ids if ref_run.get(i, {}).get("outcome") !=
                nd_run.get(i, {}).get("outcome")]
    lines = [f"disagreements: {len(disagree)}"]
    for i in disagree:
        r, n = ref_run.get(i, {}), nd_run.get(i, {})
        lines.append(f"  {i}\n    {name} {r.get('outcome', '?')}, numdiffx "
                     f"{n.get('outcome', '?')}: "
                     f"{n.get('checker_error') or n.get('error') or r.get('checker_error')}")
    slow = sorted(both, key=lambda i: -nd_run[i]["seconds"])[:5]
    lines.append(f"slowest for numdiffx (s, numdiffx vs {name}):")
    lines += [f"  {nd_run[i]['seconds']:.3f} vs {ref_run[i]['seconds']:.3f}  {i}" for i in slow]
    return lines


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    checkout = Path(argv[0]).resolve()
    if not (checkout / "tests").is_dir():
        print(f"{checkout} has no tests/ folder: pass the root of a checkout of the suite.")
        return 2
    pytest_args = argv[argv.index("--") + 1:] if "--" in argv else ["-k", "gradcheck", "tests"]
    runs = {mode: run_suite(checkout, mode, pytest_args) for mode in ("torch", "nd")}
    print(f"suite: {checkout} ({' '.join(pytest_args)})")
    print(table(runs["torch"], runs["nd"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
