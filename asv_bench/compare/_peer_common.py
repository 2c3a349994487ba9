"""What the peer-suite harness shares: a case, an answer, the judges of the peers' asserts.

A :class:`Case` is one assertion of a peer's own test suite (numdifftools' or
scipy.differentiate's), re-expressed as data: which numdiffx call computes the same
quantity (``nd_call(step)``, the step rule under test), how the peer itself computes it
(``peer_call()``) and the test's own assertion on the answer (``judge``). Nothing of the
peers' test code is copied: the cases are written here from what each test asserts,
and functions, distributions and truths that the peers ship as library code (not
test code) are read from the installed packages at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import numdiffx as nd

STEPS: dict[str, Any] = {"default": None, "adaptive": nd.steps.adaptive()}


@dataclass
class Answer:
    """What one call returned: value, its error estimate and status (numdiffx), the
    number of evaluations, or the exception it raised."""

    value: Any = None
    error: Any = None
    status: Any = None
    nfev: int = 0
    exc: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.exc is None


@dataclass(frozen=True)
class Case:
    """One peer assertion: ``judge(answer)`` is the test's own assertion."""

    suite: str
    test: str
    label: str
    nd_call: Callable[[Any], Answer]
    judge: Callable[[Answer], bool]
    peer_call: Callable[[], Answer] | None = None
    truth: Any = None  # for the honesty counts (SUCCESS but wrong, accurate but failed);
    # a zero-argument callable where computing it is costly
    tags: tuple[str, ...] = field(default=())


def nd_answer(result: Any) -> Answer:
    """An Answer from a DiffResult (or a (f(x), DiffResult) pair from jvp)."""
    if isinstance(result, tuple):
        result = result[1]
    if isinstance(result, nd.DiffResult):
        err = None if result.error is None else np.asarray(result.error)
        return Answer(np.asarray(result.value), err, np.asarray(result.status),
                      int(result.nfev))
    return Answer(np.asarray(result))


def guarded(call: Callable[[], Any], convert: Callable[[Any], Answer] = nd_answer) -> Answer:
    """Run ``call``; an exception becomes the answer (the judge decides what it means)."""
    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return convert(call())
        except Exception as exc:  # noqa: BLE001 - a peer case may expect any failure
            return Answer(exc=exc)


# -- the peers' assertions, as numpy.testing writes them --------------------------------
def allclose(actual: Any, desired: Any, rtol: float = 1e-7, atol: float = 0.0) -> bool:
    """``numpy.testing.assert_allclose``: |a - d| <= atol + rtol |d|, NaN equal to NaN."""
    a, d = np.asarray(actual), np.asarray(desired)
    try:
        a, d = np.broadcast_arrays(a, d)
    except ValueError:
        return False
    with np.errstate(all="ignore"):
        close = np.abs(a - d) <= atol + rtol * np.abs(d)
    both_nan = np.isnan(a) & np.isnan(d) if not np.iscomplexobj(a) else (
        np.isnan(a.real) & np.isnan(d.real))
    same_inf = np.isinf(a) & (a == d)
    return bool(np.all(close | both_nan | same_inf))


def almost_equal(actual: Any, desired: Any, decimal: int) -> bool:
    """``numpy.testing.assert_array_almost_equal``: |a - d| < 1.5 * 10**-decimal."""
    a, d = np.asarray(actual), np.asarray(desired)
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(a - d) < 1.5 * 10.0 ** (-decimal)))


def value_ok(answer: Answer, test: Callable[[Any], bool]) -> bool:
    """The answer has a value and ``test(value)`` holds."""
    return answer.ok and answer.value is not None and bool(test(answer.value))


def error_of(answer: Answer) -> Any:
    """The answer's error estimate; NaN where it has none (an estimate is required)."""
    if answer.error is None:
        return np.full(np.shape(answer.value), math.nan)
    return np.asarray(answer.error, dtype=float)


def raises(kinds: tuple[type[BaseException], ...]) -> Callable[[Answer], bool]:
    return lambda a: isinstance(a.exc, kinds)


# -- honesty: claims of SUCCESS against the truth ----------------------------------------
def honesty(answer: Answer, truth: Any, wrong: float = 1e-4, accurate: float = 1e-6
            ) -> tuple[int, int, int, int]:
    """(elements, SUCCESS (or ONE_SIDED) while wrong by more than ``wrong`` beyond the error
    estimate the result reports, neither while accurate to ``accurate``, SUCCESS wrong by more
    than ``wrong`` but within its own estimate), errors relative to ``max(|truth|, max|truth|
    of the result)`` (an entry is judged against the largest of its result, as numdiffx judges
    it; absolute where the whole truth is zero).

    The last count is kept apart: at a stationary point (cos' at x = 2e-14, true value
    -2e-14) an error of 1e-13 is large relative to the truth but tiny on the function's own
    scale, and a result whose estimate covers it says how wrong it may be (issue 33)."""
    if not answer.ok or answer.status is None or truth is None:
        return 0, 0, 0, 0
    if callable(truth):
        truth = truth()
    v = np.asarray(answer.value)
    try:
        t = np.broadcast_to(np.asarray(truth), v.shape)
    except ValueError:
        return 0, 0, 0, 0
    s = np.asarray(answer.status)
    top = float(np.max(np.abs(t), initial=0.0))
    scale = np.maximum(np.abs(t), top)
    scale = np.where(scale == 0, 1.0, scale)
    with np.errstate(all="ignore"):
        rel = np.abs(v - t) / scale
    # ONE_SIDED: a one-sided stencil gave the value at a domain edge, where the two-sided
    # one met NaN (adaptive: where that tableau met its tolerance): a claim of accuracy
    # with a note, not a failure; held to the same truth
    success = (s == int(nd.Status.SUCCESS)) | (s == int(nd.Status.ONE_SIDED))
    wrong_entry = success & ~(rel <= wrong)
    if answer.error is not None:
        with np.errstate(all="ignore"):
            covered = np.abs(v - t) <= np.broadcast_to(np.asarray(answer.error), v.shape)
    else:
        covered = np.zeros(v.shape, dtype=bool)
    lie = wrong_entry & ~covered
    # a result that is zero altogether has no relative accuracy to meet, and an estimate
    # larger than the value is never SUCCESS (issue 22): not counted as missed
    missed = ~success & (rel <= accurate) & (top > 0)
    return int(v.size), int(lie.sum()), int(missed.sum()), int((wrong_entry & covered).sum())
