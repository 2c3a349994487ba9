"""The operator corpus (asv_bench/compare/_gradcheck_corpus.py): numdiffx's checkers raise no
more false alarms than torch's and jax's own, and catch the injected backward bugs.

The default suite runs a representative slice; ``-m slow`` runs the whole corpus
(the table itself: ``python asv_bench/compare/gradcheck_corpus_nd_vs_frameworks.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench" / "compare"))
import _gradcheck_corpus as corpus  # noqa: E402
import gradcheck_corpus_nd_vs_frameworks as table  # noqa: E402

sys.path.pop(0)

NAMES = ("nd slow", "nd fast", "torch slow", "torch fast")


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """Tiny linalg backwards on a busy machine spend most of their time in thread hand-off."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _slice(samples: list[Any], every: int) -> list[Any]:
    steep = [s for s in samples if "steep" in s.tags]
    return samples[::every] + steep[::3]


def _check_false_alarms(tally: Any) -> None:
    for mode in ("slow", "fast"):
        assert tally.rejected[f"nd {mode}"] <= tally.rejected[f"torch {mode}"], (
            tally.which.get(f"nd {mode}"))


def _check_bugs(tally: Any, minimum: float = 0.99) -> None:
    for mode in ("slow", "fast"):
        nd_caught = tally.rejected[f"nd {mode}"]
        assert nd_caught >= minimum * tally.checked[f"nd {mode}"]
        assert nd_caught >= tally.rejected[f"torch {mode}"]


def _bug_tally(samples: list[Any], bugs: tuple[str, ...], inject: Any, second: bool) -> Any:
    total = table.Tally()
    for buggy in table.with_bugs(samples, bugs, inject).values():
        table.evaluate(buggy, table.torch_checkers(second), total)
    return total


def _run(every: int) -> None:
    samples = _slice(corpus.torch_samples(points=2), every)
    _check_false_alarms(table.evaluate(samples, table.torch_checkers(False)))
    twice = [s for s in samples if table.has_double_backward(s)]
    _check_false_alarms(table.evaluate(twice, table.torch_checkers(True)))
    _check_bugs(_bug_tally(samples, corpus.BUGS, corpus.torch_bug, False))
    _check_bugs(_bug_tally(twice, corpus.DOUBLE_BUGS, corpus.torch_double_bug, True))


def test_corpus_slice_torch() -> None:
    _run(every=32)


def _run_jax(every: int) -> None:
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        samples = corpus.jax_samples(points=2)[::every]
        for order in (1, 2):
            tally = table.evaluate(samples, table.jax_checkers(order, ("fwd", "rev")))
            nd_name, jax_name = list(tally.checked)
            assert tally.rejected[nd_name] <= tally.rejected[jax_name], tally.which
        bugs = table.Tally()
        for buggy in table.with_bugs(samples, corpus.BUGS, corpus.jax_bug).values():
            table.evaluate(buggy, table.jax_checkers(1, ("rev",)), bugs)
        nd_name, jax_name = list(bugs.checked)
        assert bugs.rejected[nd_name] >= max(0.99 * bugs.checked[nd_name],
                                             bugs.rejected[jax_name])


def test_corpus_slice_jax() -> None:
    _run_jax(every=30)


@pytest.mark.slow
def test_corpus_full_torch() -> None:
    _run(every=1)


@pytest.mark.slow
def test_corpus_full_jax() -> None:
    _run_jax(every=1)


def test_corpus_is_large_enough() -> None:
    pytest.importorskip("jax")
    assert len(corpus.torch_samples(points=2)) + len(corpus.jax_samples(points=2)) >= 300
