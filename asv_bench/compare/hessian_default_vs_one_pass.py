"""The default central Hessian (its diagonal measured first) vs one pass at auto's step.

The default ``nd.hessian(f, x)`` evaluates the diagonal on ``x +- h e_i, x +- 2 h e_i``
and steps the mixed entries where the fourth difference says they balance
(``numdiffx/_core/strategies/measured.py``, ``2 n**2 + 2 n + 1`` evaluations). The rule it
replaced took one pass at ``auto``'s step (``2 n**2 + 1``), which is
``steps.relative(48**(1/4) eps**(1/4))`` here. Both run on random smooth functions of 4
variables: sums of ``exp``, ``sin``, ``log1p`` and quartic terms of random linear forms
whose coefficients span 0.1 to 10 (f curving faster or slower than ``max(|x|, 1)``
says), plus an offset of 0.1 to 1000, at random points; the exact Hessian is jax's.

Printed: the largest entry error relative to ``sqrt(|H_ii H_jj|)`` per function (median,
90th percentile, max over functions), on how many functions each is more accurate, how
many entries lie within their error estimate (``full_output=True``), and how many are
SUCCESS while wrong by more than 1e-4 of ``sqrt(|H_ii H_jj|)`` (issue 22's test).

Needs jax. Run: python asv_bench/compare/hessian_default_vs_one_pass.py [functions]
"""

from __future__ import annotations

import sys

import numpy as np

import numdiffx as nd

EPS = float(np.finfo(np.float64).eps)
ONE_PASS = nd.steps.relative(48 ** 0.25 * EPS ** 0.25)


def random_function(rng: np.random.Generator, jnp, n: int = 4):
    """(f, x): f(x) = offset + sum of three terms of random linear forms."""
    a = rng.normal(size=(3, n)) * 10 ** rng.uniform(-1, 1, size=(3, n))
    c = rng.normal(size=3)
    offset = 10 ** rng.uniform(-1, 3)
    kinds = rng.integers(0, 4, size=3)

    def f(x):
        z = jnp.asarray(a) @ x + jnp.asarray(c)
        t = offset
        for i in range(3):
            if kinds[i] == 0:
                t = t + jnp.exp(0.3 * z[i])
            elif kinds[i] == 1:
                t = t + jnp.sin(z[i])
            elif kinds[i] == 2:
                t = t + jnp.log1p(z[i] ** 2)
            else:
                t = t + z[i] ** 4 / 24
        return t

    return f, rng.normal(size=n) * 10 ** rng.uniform(-1, 1)


def main(count: int = 150) -> None:
    try:
        import jax
    except ImportError:
        print("jax is not installed: pip install jax jaxlib")
        return
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    rules = {"default (measured)": None, "one pass at auto's step": ONE_PASS}
    worst = {k: [] for k in rules}
    honest = {k: 0 for k in rules}
    lies = {k: 0 for k in rules}
    success = {k: 0 for k in rules}
    nfev = {}
    entries = 0
    for _ in range(count):
        f, x = random_function(rng, jnp)
        exact = np.asarray(jax.hessian(f)(jnp.asarray(x)))
        d = np.abs(np.diag(exact))
        scale = np.sqrt(np.outer(d, d))
        judged = np.maximum(scale, np.abs(exact).max() * 1e-8)
        entries += exact.size

        def fn(z, f=f):
            return float(f(jnp.asarray(z)))

        for label, step in rules.items():
            r = nd.hessian(fn, x, step=step, evaluation="loop", full_output=True)
            err = np.abs(r.value - exact)
            worst[label].append(np.max(err / judged))
            honest[label] += int(np.sum(err <= r.error))
            ok = r.status == nd.Status.SUCCESS
            success[label] += int(np.sum(ok))
            lies[label] += int(np.sum(ok & (err > 1e-4 * scale)))
            nfev[label] = r.nfev
    print(f"{count} random smooth functions of 4 variables; error = max |H - exact| / "
          "sqrt(|H_ii H_jj|) per function\n")
    print(f"{'rule':26s}{'evals':>6s}{'median':>10s}{'p90':>10s}{'max':>10s}"
          f"{'within estimate':>18s}{'SUCCESS':>10s}{'SUCCESS but > 1e-4':>20s}")
    for label in rules:
        w = np.array(worst[label])
        print(f"{label:26s}{nfev[label]:6d}{np.median(w):10.1e}{np.percentile(w, 90):10.1e}"
              f"{w.max():10.1e}{honest[label] / entries:17.1%}{success[label]:10d}"
              f"{lies[label]:20d}")
    new, old = (np.array(worst[k]) for k in rules)
    print(f"\ndefault more accurate on {np.sum(new < old)} of {count} functions, less on "
          f"{np.sum(new > old)}; more than 3x less accurate on {np.sum(new > 3 * old)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150)
