"""The one-step estimate of the fast lane's common stencils in few numpy operations.

:func:`~.diagnose.one_step_estimate` serves every stencil, plan and library through the
array API: about 55 operations on (n, M) arrays, plus two passes that combine the points
into the diagnostics (the second difference and the slope). For the fast lane's commonest
calls -- ``central()``, ``forward()``, ``backward()`` of a Jacobian or gradient, numpy
arrays (torch's small CPU calls arrive here as numpy views, through the host bridge) --
:func:`lane_estimate` computes the same (error, status) from the points in about 20
operations:

- the diagnostics read from the batch: ``forward``/``backward``'s top difference is the
  lane's own difference before the division by h (``|A| / h`` is ``|value|``, the same
  bits); ``central``'s are ``dm + dp`` and ``|dp - dm| / (2 h)`` (``dm = f(x - h) - f(x)``,
  ``dp = f(x + h) - f(x)``), the engine's combinations up to exact scalings by 0.5;
- the estimate's formula for entries whose slope is resolved at this step (``h |A| <=
  |B|``, the common case), the general one's extra branches (kinks, smooth extrema) only
  where some entry is not resolved, the safety factors folded into the constants (a
  power-of-two scaling: the same bits);
- the verdict first against ``|value| + scale`` alone: an error within that tolerance is
  within the wider one with the spread too (the same SUCCESS), so the spread is only
  computed where that does not decide.

Every status SUCCESS is what this path decides; anything else (an entry that fails, a
diagnostic that is not finite, a status the stationary probe could re-judge) returns None
and the caller runs the engine's estimate on the same points (``tests/test_fastlane.py``
checks both paths field by field against the engine). Up to IEEE edge cases of the
scalings by powers of two (subnormal differences) the bits are the engine's.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..result import Status
from ..stencils import AbstractMethod, Stencil, backward, central, forward
from .diagnose import ROUNDOFF_SAFETY, SMOOTH_PRIOR, TRUNCATION_SAFETY, tolerance
from .stationary import STATIONARY

__all__ = ["FUSED", "fused", "lane_estimate"]

#: the stencils :func:`lane_estimate` serves: central's two points, or one point
FUSED: dict[AbstractMethod, str] = {central(): "central", forward(): "one",
                                    backward(): "one"}


@dataclass(frozen=True)
class _Constants:
    """What depends on the stencil and the dtype only (looked up once per pair)."""

    central: bool
    step_scale: float  # s = h / step_scale
    trunc: float  # the truncation constant times its safety factor
    roundoff: float  # the round-off constant times eps and its safety factor
    tol: float  # the relative tolerance of SUCCESS


_KNOWN: dict[int, tuple[AbstractMethod, bool]] = {}


def fused(method: AbstractMethod) -> bool:
    """Whether :func:`lane_estimate` serves ``method`` (looked up by identity: a stencil's
    hash costs more than the estimate saves at small sizes)."""
    hit = _KNOWN.get(id(method))
    if hit is not None and hit[0] is method:
        return hit[1]
    ok = isinstance(method, Stencil) and method in FUSED
    if len(_KNOWN) < 64:
        _KNOWN[id(method)] = (method, ok)
    return ok


_CONSTANTS: dict[tuple[int, float], tuple[AbstractMethod, _Constants]] = {}


def _constants(method: AbstractMethod, eps: float) -> _Constants:
    key = (id(method), eps)  # (a stencil's hash costs more than the lookup saves)
    hit = _CONSTANTS.get(key)
    if hit is not None and hit[0] is method:
        return hit[1]
    assert isinstance(method, Stencil)
    p, q = method.order, method.deriv
    c = _Constants(FUSED[method] == "central", method.step_constant * eps ** (1.0 / (p + q)),
                   TRUNCATION_SAFETY * method.truncation_constant,
                   ROUNDOFF_SAFETY * (method.roundoff_constant * eps), tolerance(eps, method))
    if len(_CONSTANTS) < 64:
        _CONSTANTS[key] = (method, c)
    return c


def lane_estimate(method: AbstractMethod, eps: float, h: np.ndarray, value: np.ndarray,
                  y: np.ndarray | None, f0_row: np.ndarray | None, f0: np.ndarray,
                  extras: list[np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """(error, status, failing) of the (n, M) ``value`` at the steps ``h`` (n,) as
    :func:`~.diagnose.one_step_estimate` gives them for a dense Jacobian (``failing``:
    some status is not SUCCESS, for the stationary probe to re-judge), or None where a
    diagnostic is not finite (the engine's estimate then decides).

    ``method``: a key of :data:`FUSED` (first derivative: ``q = 1``); ``y`` (n, k, M): f
    at the stencil's points (``central``: offsets -1, +1); ``f0_row`` (1, M): the f(x)
    the differences subtract; ``f0`` (M,): the f(x) whose magnitude sets the round-off.
    ``extras``: the engine's diagnostics instead of the points (``A``, and ``B`` for
    central: :func:`~.diagnose.diagnostic_weights` combined); ``failing`` is then any
    status not SUCCESS (the caller's probe decides). Call inside
    ``np.errstate(all="ignore")``; every array is numpy, ``value`` finite, every step
    positive. The comments name the engine's terms (:mod:`.diagnose`)."""
    k = _constants(method, eps)
    n = value.shape[0]
    hc = np.abs(h).reshape(n, 1)  # positive: no zero step to guard
    s = hc / k.step_scale
    hos = hc / s  # h / s
    f_abs = np.abs(f0.reshape(1, -1))
    # scratch for the (n, M) terms: a fresh array's pages are faulted in again on each
    # call once the heap is trimmed (the estimate's cost doubled at n = 100)
    buf = _scratch(value.shape, value.dtype)
    mag = np.abs(value, out=buf[0])
    scale = mag.max(axis=0, keepdims=True)  # output_scale: finite, the lane checked
    if extras is not None:  # the engine's own A (and B): |A| / h, |B| / h
        top_h = np.abs(extras[0], out=buf[3])
        top_h /= hc
        if k.central:
            below_h = np.abs(extras[1], out=buf[2])
            below_h /= hc
            hk = np.divide(top_h, below_h, out=buf[1])
        else:
            below_h = np.divide(f_abs, hc, out=buf[1])
            hk = None
    elif k.central:  # p = 2: the second difference A and the slope B from the points
        assert y is not None and f0_row is not None
        dm = np.subtract(y[:, 0, :], f0_row, out=buf[1])  # f(x - h) - f(x)
        below_h = np.subtract(y[:, 1, :], f0_row, out=buf[2])  # f(x + h) - f(x), |B| / h
        top_h = np.add(dm, below_h, out=buf[3])  # A: the engine's (dm * 1.0) + (dp * 1.0)
        np.abs(top_h, out=top_h)
        top_h /= hc  # |A| / h
        np.subtract(below_h, dm, out=below_h)  # B = 0.5 (dp - dm) exactly (powers of 2)
        np.abs(below_h, out=below_h)
        below_h /= 2 * hc  # |B| / h
        hk = np.divide(top_h, below_h, out=dm)  # h kappa where resolved
    else:  # p = 1: A is the value's own difference, |A| / h = |value| bit for bit
        top_h = mag
        below_h = np.divide(f_abs, hc, out=buf[1])  # no slope below: f(x) itself
        hk = None
    if hk is None:
        hk = np.divide(top_h, below_h, out=buf[5])
    # resolved, |A| <= |B| (|A| = 0 too): where every ratio is below 1 (0 / 0 aside,
    # |A| = 0 then), each |A| is below its |B| (a rounded quotient of more than 1 is not)
    resolved = None
    if not (value.size and np.fmax.reduce(hk, axis=None) < 1.0):
        resolved = top_h <= below_h
    np.fmax(hk, hos, out=hk)  # 0 / 0 (NaN) where both vanish: h / s, as the engine's
    smooth = None
    if resolved is not None and not resolved.all():
        if k.central:  # unresolved: smooth on the scale s (h / s), or a feature (1)
            smooth = top_h <= SMOOTH_PRIOR * (below_h * hos + f_abs * hos ** 2 / hc)
            hk = np.where(resolved, hk, np.where(smooth, hos, 1.0))
        else:
            hk = np.where(resolved, hk, hos)
    # the truncation's floor c |value| (h / s)**p (p = 1: + the prior c |f| (h / s) / s)
    floor = np.multiply(mag, k.trunc, out=buf[4])
    if k.central:
        trunc = np.multiply(top_h, k.trunc, out=below_h)  # (below_h: no longer needed)
        trunc *= hk
        floor *= hos ** 2
    else:  # c |A| / h times h kappa (on the points, |A| / h is |value|: floor's own)
        trunc = np.multiply(floor if top_h is mag else k.trunc * top_h, hk, out=hk)
        floor *= hos
        prior = np.multiply(k.trunc * f_abs, hos, out=buf[2])
        prior /= s
        floor += prior
    np.maximum(trunc, floor, out=trunc)
    if smooth is not None:  # neither: the one-sided disagreement |A| h / 2
        trunc = np.where(resolved | smooth, trunc,
                         np.maximum(trunc, TRUNCATION_SAFETY * (top_h / 2)))
    # the round-off 2 r eps |f| / h (into floor's scratch: kept for the verdict)
    roundoff = np.divide(k.roundoff * f_abs, hc, out=buf[4])
    error = np.add(roundoff, trunc)
    # SUCCESS: error <= tol (|value| + (scale + spread)), spread >= 0; within tol scale
    # per output (its entries' largest error), SUCCESS whatever the spread; first the
    # largest error of all against tol times the smallest scale (two full reductions,
    # cheaper than the per-output one; sufficient: a rounded product is monotone)
    status = np.zeros(value.shape, dtype=np.int8)
    largest = error.max() if value.size else 0.0  # NaN or inf if any entry is (all >= 0)
    if (value.size and largest <= k.tol * scale.min()) or (
            error.max(axis=0, keepdims=True) <= k.tol * scale).all():
        return error, status, False
    if not math.isfinite(largest):  # a diagnostic not finite (the engine's prior)
        return None
    # the verdict (diagnose._verdict): the spread widens the tolerance, never beyond
    # |value| + scale; a failing entry is ROUNDOFF where that term dominates
    total = mag + scale
    spread = np.minimum(top_h / hk, total) if k.central else 0.0
    fails = ~(error <= k.tol * (mag + (scale + spread)))
    if not fails.any():
        return error, status, False
    np.copyto(status, _NONSMOOTH, where=fails)
    np.copyto(status, _ROUNDOFF, where=fails & (roundoff >= trunc))
    if y is None or f0_row is None:
        return error, status, True
    return error, status, k.central and _may_rejudge(y, f0_row, hc, s, mag, scale, fails)


def _may_rejudge(y: np.ndarray, f0_row: np.ndarray, h: np.ndarray, s: np.ndarray,
                 mag: np.ndarray, scale: np.ndarray, fails: np.ndarray) -> bool:
    """Whether :func:`~.stationary.rejudge_one_step` may change a failing central entry:
    its own test ``|A| / h**2 s > STATIONARY (|value| + scale)`` (``A`` combined as the
    engine combines it) on the failing entries (elementwise: the same bits; on every
    entry where many fail, cheaper than gathering them). False: the probe would leave
    every status as it is, and is not run."""
    if fails.size <= _DENSE_PROBE or np.count_nonzero(fails) * _DENSE_SHARE >= fails.size:
        e1 = np.add(y[:, 0, :] - f0_row, y[:, 1, :] - f0_row)
        test = np.abs(e1, out=e1) / h ** 2 * s > STATIONARY * (mag + scale)
        return bool(np.logical_and(test, fails, out=test).any())
    r, c = np.nonzero(fails)
    f0 = f0_row[0, c]
    e1 = (y[r, 0, c] - f0) + (y[r, 1, c] - f0)
    return bool((np.abs(e1) / h[r, 0] ** 2 * s[r, 0] > STATIONARY * (mag[r, c] + scale[0, c])
                 ).any())


_NONSMOOTH, _ROUNDOFF = np.int8(Status.NONSMOOTH), np.int8(Status.ROUNDOFF)
#: the probe's test runs on every entry, not on the gathered failing ones, up to this many
#: entries or where at least 1 / _DENSE_SHARE of them fail (a gather costs ~8 passes)
_DENSE_PROBE, _DENSE_SHARE = 256, 8

_LOCAL = threading.local()
#: the largest (n, M) kept as scratch per thread (6 arrays of 512 KiB in float64)
_SCRATCH_MAX = 2 ** 16


def _scratch(shape: tuple[int, ...], dtype: np.dtype[Any]) -> list[np.ndarray]:
    """Six (n, M) arrays of ``dtype`` to write terms into: this thread's, reused from
    call to call (nothing the estimate returns lives in them), or fresh ones."""
    key = (shape, dtype)
    held = getattr(_LOCAL, "scratch", None)
    if held is not None and held[0] == key:
        return held[1]
    arrays = [np.empty(shape, dtype=dtype) for _ in range(6)]
    if math.prod(shape) <= _SCRATCH_MAX:
        _LOCAL.scratch = (key, arrays)
    return arrays
