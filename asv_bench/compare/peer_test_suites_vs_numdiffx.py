"""numdiffx vs the test suites of numdifftools and scipy.differentiate: their cases, their asserts.

Every assertion of numdifftools' and scipy.differentiate's own test suites that asks for
a derivative (see ``_peer_ndt_*.py`` and ``_peer_scipy*.py`` for what is included, what is
left out and how options map) is run three ways and judged by the test's own assertion:

* ``default``: numdiffx with its default step (``step=None``), ``full_output=True``;
* ``adaptive``: numdiffx with ``step=nd.steps.adaptive()``;
* ``peer``: the peer itself (numdifftools / SciPy) with the test's own options.

Where a test's assertion uses the method's error estimate (numdifftools' decimals from
``error_estimate``, SciPy's ``|df - ref| < error``), numdiffx's own estimate is used.
Besides the pass counts it prints the honesty of numdiffx's statuses against the
tests' truths: elements called SUCCESS (or ONE_SIDED: a one-sided stencil's value at a
domain edge) while wrong by more than 1e-4 (relative to the largest true entry of the
result), and elements accurate to 1e-6 called neither.

Targets (issue 22): adaptive passes >= 99% of numdifftools' assertions and all of
SciPy's; the default passes >= 85% of numdifftools'; no SUCCESS wrong by more than 1e-4
beyond the error estimate it reports (those within it are printed apart: a stationary point);
adaptive calls nothing accurate to 1e-6 a failure.

Run: python asv_bench/compare/peer_test_suites_vs_numdiffx.py [--failures] [--no-peer]
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peer_common import STEPS, Case, honesty  # noqa: E402


def load_cases() -> dict[str, list[Case]]:
    """The cases per suite; a suite whose peer is not installed is skipped."""
    suites: dict[str, list[Case]] = {}
    try:
        import numdifftools  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        print("numdifftools is not installed: its suite is skipped")
    else:
        from _peer_ndt_matrices import all_cases

        suites["numdifftools"] = all_cases()
    from _peer_scipy import all_cases as scipy_cases

    suites["scipy.differentiate"] = scipy_cases()
    return suites


def run(cases: list[Case], rules: tuple[str, ...], peer: bool) -> dict[str, list[dict]]:
    """Per rule (and 'peer'): one row per case with pass, honesty counts and nfev."""
    out: dict[str, list[dict]] = {}
    for rule in rules:
        rows = []
        for c in cases:
            a = c.nd_call(STEPS[rule])
            n, lies, missed, covered = honesty(a, c.truth)
            rows.append({"case": c, "pass": c.judge(a), "n": n, "lies": lies,
                         "missed": missed, "covered": covered, "nfev": a.nfev, "answer": a})
        out[rule] = rows
    if peer:
        # cases the peer cannot run as numdiffx does (numdiffx-only checks) are left out
        out["peer"] = [{"case": c, "pass": c.judge(c.peer_call()), "n": 0, "lies": 0, "covered": 0,
                        "missed": 0, "nfev": 0, "answer": None}
                       for c in cases if c.peer_call is not None]
    return out


#: adaptive failures on peer assertions that numdiffx does not meet by design (why, as
#: measured); printed when the case fails, and still counted as failures
BY_DESIGN = {
    "2 x**0 at 1.5": (
        "SciPy asserts success for a constant's derivative at default tolerances (atol = "
        "smallest normal): its estimate ignores round-off. numdiffx returns 0.0 exactly with "
        "the slope rounding can hide, 1.2e-14, as its estimate: 2 x**0 and 1e20 + x give the "
        "same bits at every point, so no rule on the values alone can call one SUCCESS and "
        "not the other. SUCCESS where the caller's atol admits it (adaptive(atol=1e-13))."),
    "atol": (
        "test_convergence asserts that atol=1e-6 ends more accurate than atol=1e-3; "
        "numdiffx's first estimate (4.9e-7, true error 4.6e-11) meets both, so both stop at "
        "the same level with the same value (the rtol pair passes)."),
}


def summary(suite: str, results: dict[str, list[dict]], failures: bool) -> dict[str, float]:
    rules = list(results)
    first = results[rules[0]]
    print(f"\n== {suite}: {len(first)} assertions")
    per_test: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for rule, rows in results.items():
        for r in rows:
            per_test[r["case"].test][rule][r["pass"]] += 1
    width = max(len(t) for t in per_test)
    print(f"{'test':<{width}} " + " ".join(f"{r:>10}" for r in rules))
    for test, counts in per_test.items():
        cells = " ".join(f"{counts[r][True]:>4}/{sum(counts[r].values()):<5}"
                         if counts[r] else f"{'n/a':>10}" for r in rules)
        print(f"{test:<{width}} {cells}")
    rates = {}
    for rule in rules:
        rows = results[rule]
        rate = sum(r["pass"] for r in rows) / len(rows)
        rates[rule] = rate
        line = f"{rule:>9}: passes {sum(r['pass'] for r in rows)}/{len(rows)} = {rate:.1%}"
        # a case its suite marks xfail (pytest.mark.xfail) fails there as expected: the
        # suite counts it xfailed, not failed; numdiffx is held to it all the same
        xfail = [r for r in rows if "xfail" in r["case"].tags]
        if xfail:
            failed = sum(not r["pass"] for r in xfail)
            line += (f" ({len(xfail)} marked xfail in the suite itself, {failed} of them "
                     f"failed: as the suite counts, {sum(r['pass'] for r in rows)}/"
                     f"{len(rows) - failed} passed + {failed} xfailed)")
        if rule != "peer":
            line += (f"; elements {sum(r['n'] for r in rows)}, SUCCESS/ONE_SIDED but wrong > "
                     f"1e-4 beyond its estimate: {sum(r['lies'] for r in rows)} (within its "
                     f"estimate: {sum(r['covered'] for r in rows)}), accurate to 1e-6 but "
                     f"neither: {sum(r['missed'] for r in rows)}")
        print(line)
    for r in results.get("adaptive", []):
        why = BY_DESIGN.get(r["case"].label)
        if not r["pass"] and why is not None:
            print(f"  adaptive fails {r['case'].test} {r['case'].label} by design: {why}")
    if failures:
        for rule in rules:
            for r in results[rule]:
                if not r["pass"] or r["lies"] or (rule == "adaptive" and r["missed"]):
                    a = r["answer"]
                    what = "" if a is None else (
                        f"exc={a.exc!r}" if a.exc is not None else
                        f"value={_short(a.value)} error={_short(a.error)} "
                        f"status={_short(a.status)}")
                    flags = ("FAIL " if not r["pass"] else "") + (
                        f"lies={r['lies']} " if r["lies"] else "") + (
                        f"missed={r['missed']} " if r["missed"] else "")
                    print(f"  [{rule}] {flags}{r['case'].test} {r['case'].label}: {what}")
    return rates


def _short(a: object) -> str:
    import numpy as np

    if a is None:
        return "None"
    arr = np.asarray(a)
    return np.array2string(arr.ravel()[:6], precision=6) + ("..." if arr.size > 6 else "")


def main(argv: list[str]) -> int:
    failures = "--failures" in argv
    peer = "--no-peer" not in argv
    t0 = time.perf_counter()
    suites = load_cases()
    rates = {}
    for suite, cases in suites.items():
        results = run(cases, ("default", "adaptive"), peer)
        rates[suite] = summary(suite, results, failures)
    print(f"\n(measured in {time.perf_counter() - t0:.0f} s)")
    checks = []
    if "numdifftools" in rates:
        checks += [("adaptive passes >= 99% of numdifftools'", rates["numdifftools"]["adaptive"]
                    >= 0.99),
                   ("default passes >= 85% of numdifftools'", rates["numdifftools"]["default"]
                    >= 0.85)]
    checks.append(("adaptive passes all of scipy.differentiate's",
                   rates["scipy.differentiate"]["adaptive"] == 1.0))
    for name, ok in checks:
        print(f"target: {name}: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
