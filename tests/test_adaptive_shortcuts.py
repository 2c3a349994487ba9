"""The adaptive rule's shortcuts give the bits of the general code they stand in for.

Issue 37 cut the bookkeeping of a dense adaptive Jacobian: the tableau's second level over
a clean level (every value valid, no step floor) without the general level's masks
(``tableau._clean_second_level``), the retired parts assembled in place
(``tableau._own_numpy``), the verify pass's test for suspect entries on the few elements
that can be suspect (``verify._any_suspect``) and the stationary test skipped where the
final status found no candidate for it (``final_status(rejudged=...)``). Each is switched
off here in turn, so that the general code runs, and every value, estimate, step, status
and nfev must be the same bit for bit; each must also have been taken at least once.
"""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.strategies import adaptive, tableau, verify


def _problems(xb):
    xp = xb.xp

    def dense(z):  # sin * sum, a staircase (verify replaces it), log near 0, exp
        s = xp.sum(z[..., :-3], axis=-1, keepdims=True)
        body = xp.sin(z[..., :-3]) * s + z[..., :-3] ** 3
        stair = xp.floor(z[..., -3:-2]) + 0.0 * s
        lg = xp.log(z[..., -2:-1]) * (1.0 + 0.0 * s)
        return xp.concat([body, stair, lg, xp.exp(s) * z[..., -1:]], axis=-1)

    def tridiagonal(z):
        y = -2.0 * z + xp.sin(z)
        y = y + xp.concat([xp.zeros_like(z[..., :1]), z[..., :-1]], axis=-1)
        return y + xp.concat([z[..., 1:], xp.zeros_like(z[..., :1])], axis=-1)

    def kinks(z):  # |x - 0.3|, a ReLU, a staircase, a stationary cube at 0
        return xp.concat([xp.abs(z - 0.3) * z[..., :1], xp.maximum(z, 0.0 * z) * z,
                          xp.floor(3 * z), z ** 3], axis=-1)

    x9 = xb.asarray([0.3, -1.2, 0.7, 2.0, 0.05, -0.4, 9.5, 1e-4, 0.25])
    xt = xb.asarray(np.random.default_rng(1).uniform(-1, 1, 40))
    xk = xb.asarray([0.3, 0.0, -0.5, 1.0 / 3.0, 2.0, 1e-9])
    ad = nd.steps.adaptive
    return {
        "dense": (dense, x9, ad(), {}),
        "dense, blocks": (dense, x9, ad(), {"memory_budget": 12240}),
        "dense, forward": (dense, x9, ad(), {"method": nd.forward()}),
        "dense, float32": (dense, xb.asarray([0.3, -1.2, 0.7, 2.0, 0.05, -0.4, 9.5, 1e-4,
                                              0.25], dtype="float32"), ad(),
                           {"memory_budget": 6000}),
        "dense, atol": (dense, x9, ad(atol=1e-12, rtol=1e-9), {"memory_budget": 12240}),
        "tridiagonal, blocks": (tridiagonal, xt, ad(), {"memory_budget": 60000}),
        "kinks": (kinks, xk, ad(), {}),
        "kinks, blocks": (kinks, xk, ad(), {"memory_budget": 5000}),
    }


def _off(monkeypatch, which):
    """Switch one shortcut off: the general code runs in its place."""
    if which == "second level":
        monkeypatch.setattr(tableau, "_clean_second_level", lambda *a, **k: None)
    elif which == "in place":
        monkeypatch.setattr(tableau, "_own_numpy", lambda a: False)
    elif which == "suspects":
        monkeypatch.setattr(verify, "_any_suspect", lambda *a, **k: True)
    else:
        real = adaptive.adaptive.final_status

        def no_candidates_list(self, *a, rejudged=None, **k):
            return real(self, *a, **k)  # (the list stays empty: the stationary test runs)
        monkeypatch.setattr(adaptive.adaptive, "final_status", no_candidates_list)


def _counting(monkeypatch, module, name, taken, counts):
    real = getattr(module, name)

    def spy(*a, **k):
        out = real(*a, **k)
        counts[name] += int(taken(out))
        return out
    monkeypatch.setattr(module, name, spy)


def test_shortcuts_give_the_bits_of_the_general_code(xb, monkeypatch):
    if xb.name.startswith("jax"):
        pytest.skip("eager jax: each block layout compiles anew (~40 s); the shortcuts are "
                    "the same array-API code as on numpy, torch and array_api_strict")
    counts = {"_clean_second_level": 0, "_own_numpy": 0, "_any_suspect": 0}
    _counting(monkeypatch, tableau, "_clean_second_level", lambda out: out is not None,
              counts)
    _counting(monkeypatch, tableau, "_own_numpy", bool, counts)
    _counting(monkeypatch, verify, "_any_suspect", lambda out: not out, counts)
    problems = _problems(xb)

    def run_all():
        out = {}
        for name, (f, x, rule, kw) in problems.items():
            with np.errstate(all="ignore"):
                r = nd.jacobian(f, x, step=rule, evaluation="batched", full_output=True,
                                **kw)
            out[name] = (*(xb.to_numpy(getattr(r, a)) for a in
                           ("value", "error", "step", "status")), int(r.nfev))
        return out

    real_stationary = adaptive.adaptive.stationary
    calls = {"n": 0}

    def stationary(self, *a, **k):
        calls["n"] += 1
        return real_stationary(self, *a, **k)
    monkeypatch.setattr(adaptive.adaptive, "stationary", stationary)
    fast = run_all()
    skipped_stationary = calls["n"]
    assert counts["_clean_second_level"] > 0, "the clean second level never ran"
    assert counts["_any_suspect"] > 0, "no verify pass was decided on the few elements"
    if xb.name == "numpy":
        assert counts["_own_numpy"] > 0, "no part was assembled in place"
    for which in ("second level", "in place", "suspects", "stationary"):
        with monkeypatch.context() as m:
            _off(m, which)
            calls["n"] = 0
            general = run_all()
            if which == "stationary":  # the stationary test did run more often without
                assert calls["n"] > skipped_stationary  # the shortcut
        for name in problems:
            for part, a, b in zip(("value", "error", "step", "status", "nfev"),
                                  fast[name], general[name]):
                np.testing.assert_array_equal(a, b, err_msg=f"{name}: {part} ({which} off)")
                if isinstance(a, np.ndarray):
                    assert a.dtype == b.dtype, (name, part, which)
