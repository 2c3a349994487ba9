"""The jax suite comparison's both-run (asv_bench/compare/jax_suite_check_grads_vs_nd.py and
its swap plugin): each call runs both checkers, the order alternating; a test's verdict for
numdiffx follows from what each checker raised."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench" / "compare"))

import _check_grads_swap_plugin as plugin  # noqa: E402
from jax_suite_check_grads_vs_nd import split  # noqa: E402


def test_both_runs_each_checker_on_every_call_alternating_and_goes_on_with_jax(monkeypatch: Any
                                                                             ) -> None:
    monkeypatch.setattr(plugin, "_CLEAR", False)
    monkeypatch.setattr(plugin, "_ND_RECORD", {})
    monkeypatch.setattr(plugin, "_CALLS", [0])
    import _gradcheck_swap_plugin as shared

    monkeypatch.setattr(shared, "_RECORD", {})
    plugin._CURRENT[0] = "t::a"  # the test being run, as pytest_runtest_logstart sets it
    order: list[str] = []

    def jax_impl(*args: Any) -> None:
        order.append("jax")

    def nd_impl(*args: Any) -> None:
        order.append("nd")
        raise AssertionError("numdiffx: differs")

    checker = plugin._both(jax_impl, nd_impl)
    checker(1)
    checker(2)  # numdiffx's AssertionError is recorded, not raised: the test goes on
    assert order == ["jax", "nd", "nd", "jax"]
    assert plugin._ND_RECORD["t::a"]["calls"] == 2
    assert plugin._ND_RECORD["t::a"]["checker_error"].startswith("AssertionError")

    def jax_raises(*args: Any) -> None:
        raise ValueError("jax's")

    with pytest.raises(ValueError, match="jax's"):
        plugin._both(jax_raises, lambda *a: None)(3)


def test_split_gives_numdiffx_the_outcome_its_own_raise_would_give() -> None:
    def rec(outcome: str, jax_err: str = "", nd_err: str = "") -> tuple[dict, dict]:
        return ({"calls": 1, "seconds": 1.0, "outcome": outcome, "error": "",
                 "checker_error": jax_err},
                {"calls": 1, "seconds": 2.0, "checker_error": nd_err})

    cases = {"same": rec("passed"),
             "only_nd_raises": rec("passed", nd_err="AssertionError: x"),
             "expected_raise_both": rec("passed", "UnexpectedTracerError: a",
                                        "UnexpectedTracerError: b"),
             "expected_raise_nd_silent": rec("passed", jax_err="UnexpectedTracerError: a"),
             "jax_fails_nd_silent": rec("failed", jax_err="AssertionError: a"),
             "other_type": rec("passed", "TypeError: a", "ValueError: b")}
    jax_run, nd_run = split({"jax": {k: v[0] for k, v in cases.items()},
                             "nd": {k: v[1] for k, v in cases.items()}})
    got = {k: nd_run[k]["outcome"] for k in cases}
    assert got == {"same": "passed", "only_nd_raises": "failed", "expected_raise_both": "passed",
                   "expected_raise_nd_silent": "failed", "jax_fails_nd_silent": "passed",
                   "other_type": "failed"}
    assert nd_run["same"]["seconds"] == 2.0 and jax_run["same"]["seconds"] == 1.0
    # --merge re-derives the same outcomes from saved records
    assert split({"jax": jax_run, "nd": nd_run})[1] == nd_run
