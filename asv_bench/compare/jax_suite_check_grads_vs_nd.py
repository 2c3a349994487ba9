"""JAX's own test suite: ``jax.test_util.check_grads`` vs ``nd.check_grads`` swapped in.

The tests of JAX's source tree that call ``check_grads`` run once with each checker, under
JAX's own test configuration (its ``conftest.py`` and pytest settings: warnings as errors;
strict dtype/rank promotion where a test file asks for it), x64 on by default, 8 host CPU
devices (so the sharding tests run), every test seeded as JAX seeds it. The JAX source is
NOT part of numdiffx: PATH is a checkout of jax-ml/jax at the installed jax's release
(``git archive jax-v0.10.2 tests conftest.py pyproject.toml`` is enough).

Run: ``python asv_bench/compare/jax_suite_check_grads_vs_nd.py PATH``, e.g.

    python asv_bench/compare/jax_suite_check_grads_vs_nd.py /work/jaxsrc
    python asv_bench/compare/jax_suite_check_grads_vs_nd.py /work/jaxsrc -- tests/nn_test.py

Everything after ``--`` goes to pytest (default: every ``tests/*.py`` that mentions
``check_grads``; only the test methods that reach ``check_grads`` in their file, directly
or through a helper, are collected with ``-k``). ONE run by default: the swap plugin
(``_check_grads_swap_plugin.py``, ``ND_SWAP_MODE=both``) replaces
``jax.test_util.check_grads`` (and the ``jtu.check_grads`` JAX's tests call) before the
tests import it with a checker that runs BOTH jax's and numdiffx's on every call's
arguments, the order alternating from call to call, each started on cleared jax caches
(``jax.clear_caches()``: a cold check is mostly XLA compiling f's pieces, which the second
checker would otherwise find done), and records each side's time and verdict; the test
goes on with jax's result. So the two sides are timed on the same machine load, call by
call. ``--separate``: the former three runs (jax's to find the tests, then numdiffx's and
jax's one after the other; warm caches within each run, times taken at different
moments). ``--x64 0`` runs with x64 off; ``--save FILE`` keeps both records (JSON), and
``--merge FILE...`` prints one table over saved records (e.g. one run per test file);
``--keep-caches``: the both-run without clearing jax's caches (see the plugin: a cold f
is paid by whichever checker goes first, the checkers' own operations stay compiled).
Printed: the issue's table (tests calling check_grads, passed, failed with each), every
disagreement with numdiffx's first error line, and the time inside the checker on the
tests both pass.

Measured (JAX 0.10.2, ``JAX_NUM_GENERATED_CASES=1``, one both-run per file, merged with
``--merge``; shared 2-core machine under heavy load): x64 on, 310 tests (api's 128
jit_forwarding cases, batching 21, custom_api 4, custom_linear_solve 9, custom_root 6,
fft 3, lax_autodiff 88, lax_numpy's OpGradSpecialValue 4, lax_scipy 3, nn 19, ode 8,
pjit 5, pmap 12): 310/310 pass both ways, 0 disagreements, numdiffx 0.88x jax's time;
x64 off, 264 tests (api's jit_forwarding, batching, custom_api, lax_autodiff, the
OpGradSpecialValue cases, nn): 264/264, 0 disagreements, 0.83x.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gradcheck_suite_torch_vs_nd import disagreements  # the same report tail

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
Record = dict[str, dict[str, Any]]


def run_suite(checkout: Path, mode: str, pytest_args: list[str], x64: str,
              only: list[str] | None = None, clear: bool = True) -> Record:
    """Run the tests with one checker; {test id: calls, seconds, outcome, error}. Mode
    ``both``: {"jax": record, "nd": record} of one run where every call runs both."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / f"{mode}.json"
        env = dict(os.environ, ND_SWAP_MODE=mode, ND_SWAP_RECORD=str(record),
                   JAX_ENABLE_X64=x64, JAX_PLATFORMS="cpu", ND_SWAP_CLEAR=str(int(clear)),
                   XLA_FLAGS="--xla_force_host_platform_device_count=8",
                   PYTHONPATH=os.pathsep.join([str(HERE), str(REPO),
                                               os.environ.get("PYTHONPATH", "")]))
        if only is not None:
            (Path(tmp) / "only.txt").write_text("\n".join(only))
            env["ND_SWAP_ONLY"] = str(Path(tmp) / "only.txt")
        cmd = [sys.executable, "-m", "pytest", "-p", "_check_grads_swap_plugin", "-q",
               "-p", "no:cacheprovider", "--color=no", *pytest_args]
        subprocess.run(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        if mode == "both":
            nd_side = Path(str(record) + ".nd")
            if not (record.exists() and nd_side.exists()):
                return {}
            return {"jax": json.loads(record.read_text()),
                    "nd": json.loads(nd_side.read_text())}
        return json.loads(record.read_text()) if record.exists() else {}


def split(run: Record) -> tuple[Record, Record]:
    """A ``both`` run's two records, each {test id: calls, seconds, outcome, errors}. A test
    has, for numdiffx, the test's outcome where both checkers raised alike (neither, or the
    same exception type: a test that expects jax's error gets numdiffx's too); it fails
    where only numdiffx raised, or where jax's raise made the test pass and numdiffx did not
    raise; it passes where jax's raise failed the test and numdiffx's check did not."""
    jax_run, nd_calls = run.get("jax", {}), run.get("nd", {})
    nd_run: Record = {}
    for i, entry in jax_run.items():
        nd = nd_calls.get(i, {"calls": 0, "seconds": 0.0, "checker_error": ""})
        outcome = entry.get("outcome", "")
        j_err, n_err = entry.get("checker_error", ""), nd["checker_error"]
        if bool(j_err) != bool(n_err) or j_err.split(":")[0] != n_err.split(":")[0]:
            outcome = ("passed" if outcome == "failed" and not n_err else "failed")
        nd_run[i] = {"calls": nd["calls"], "seconds": nd["seconds"], "outcome": outcome,
                     "checker_error": n_err, "order": nd.get("order", []),
                     "error": "" if n_err else entry.get("error", "")}
    return jax_run, nd_run


def callers(path: Path) -> set[str]:
    """Names of the test methods in ``path`` that call check_grads, directly or through a
    helper of the same file (a static pre-selection; the first run confirms it)."""
    funcs = [n for n in ast.walk(ast.parse(path.read_text()))
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def names(fn: ast.AST) -> set[str]:
        return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(fn)
                if isinstance(n, (ast.Name, ast.Attribute))}

    used = {fn.name: names(fn) for fn in funcs}
    reach = {"check_grads"}
    while True:
        more = {name for name, refs in used.items() if refs & reach} - reach
        if not more:
            break
        reach |= more
    return {name for name in reach if name.startswith("test")}


def table(jax_run: Record, nd_run: Record) -> str:
    ids = sorted(i for i in set(jax_run) | set(nd_run)
                 if jax_run.get(i, {}).get("calls") or nd_run.get(i, {}).get("calls"))

    def count(run: Record, outcome: str) -> int:
        return sum(run.get(i, {}).get("outcome") == outcome for i in ids)

    both = [i for i in ids if jax_run.get(i, {}).get("outcome") == "passed"
            and nd_run.get(i, {}).get("outcome") == "passed"]
    t_jax = sum(jax_run[i]["seconds"] for i in both)
    t_nd = sum(nd_run[i]["seconds"] for i in both)
    calls = [sum(run.get(i, {}).get("calls", 0) for i in ids) for run in (jax_run, nd_run)]
    lines = [
        "| run | tests that call check_grads | pass | fail | skipped |",
        "|---|---|---|---|---|",
        f"| jax's check_grads | {len(ids)} | {count(jax_run, 'passed')} | "
        f"{count(jax_run, 'failed')} | {count(jax_run, 'skipped')} |",
        f"| `nd.check_grads` swapped in | {len(ids)} | {count(nd_run, 'passed')} | "
        f"{count(nd_run, 'failed')} | {count(nd_run, 'skipped')} |",
        f"calls: {calls[0]} (jax), {calls[1]} (numdiffx)",
        f"time inside check_grads on the {len(both)} tests both pass: jax {t_jax:.2f} s, "
        f"numdiffx {t_nd:.2f} s, ratio {t_nd / max(t_jax, 1e-9):.2f}",
    ]
    for first in ("jax", "nd"):  # a both-run: is the ratio the same whichever went first?
        some = [i for i in both if nd_run[i].get("order", [None])[:1] == [first]]
        if some:
            tj, tn = (sum(run[i]["seconds"] for i in some) for run in (jax_run, nd_run))
            lines.append(f"  tests whose first call ran {first}'s checker first: {len(some)}, "
                         f"ratio {tn / max(tj, 1e-9):.2f}")
    lines += disagreements(ids, both, "jax", jax_run, nd_run)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "--merge":  # records saved with --save, e.g. one per file: one table
        jax_run, nd_run = {}, {}
        for path in argv[1:]:
            one_jax, one_nd = split(json.loads(Path(path).read_text()))
            jax_run.update(one_jax)
            nd_run.update(one_nd)
        print(f"{len(argv) - 1} saved record(s): {' '.join(Path(p).stem for p in argv[1:])}")
        print(table(jax_run, nd_run))
        return 0
    checkout = Path(argv[0]).resolve()
    if not (checkout / "tests").is_dir():
        print(f"{checkout} has no tests/ folder: pass the root of a JAX source checkout.")
        return 2
    own = argv[:argv.index("--")] if "--" in argv else argv  # this script's options
    x64 = own[own.index("--x64") + 1] if "--x64" in own else "1"
    files = sorted(p for p in (checkout / "tests").glob("*.py")
                   if "check_grads" in p.read_text())
    if "--" in argv:
        pytest_args = argv[argv.index("--") + 1:]
        files = [p for p in files if str(p.relative_to(checkout)) in pytest_args]
    else:
        pytest_args = [str(p.relative_to(checkout)) for p in files]
    tests = sorted(set().union(*(callers(p) for p in files))) if files else []
    if tests and "-k" not in pytest_args:
        pytest_args += ["-k", " or ".join(tests)]
    if "--separate" in own:
        found = run_suite(checkout, "jax", pytest_args, x64)
        ids = sorted(i for i, e in found.items() if e.get("calls"))
        nd_run = run_suite(checkout, "nd", pytest_args, x64, only=ids)
        jax_run = run_suite(checkout, "jax", pytest_args, x64, only=ids)
    else:
        jax_run, nd_run = split(run_suite(checkout, "both", pytest_args, x64,
                                          clear="--keep-caches" not in own))
    if "--save" in own:
        Path(own[own.index("--save") + 1]).write_text(
            json.dumps({"jax": jax_run, "nd": nd_run}, indent=1))
    import jax

    print(f"JAX {jax.__version__} tests at {checkout} ({' '.join(p.name for p in files)}), "
          f"JAX_ENABLE_X64={x64}, 8 CPU devices")
    print(table(jax_run, nd_run))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
