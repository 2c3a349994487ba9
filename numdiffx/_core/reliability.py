"""Guards that turn silent failures into answers, statuses or errors (issue 9).

- :func:`check_holomorphic`: the complex-step method is only valid for a holomorphic
  f. A real-valued f at complex points (``abs``, ``real``) would give a silent zero and
  ``conj`` the wrong sign; one complex-step and one central difference along a fixed
  direction (3 evaluations) detect both before any result is computed.
- :func:`one_sided_retry`: where a two-sided stencil met a non-finite value of f on one
  side only (a domain edge between x - h and x + h), the one-sided stencil of the same
  order on the finite side gives the value, with status ``ONE_SIDED``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .result import Status
from .stencils import AbstractMethod, ComplexStep, Stencil, backward, forward

__all__ = ["check_holomorphic", "one_sided_retry"]


def _complex_of(xp: Any, dtype: Any) -> Any:
    return xp.complex64 if dtype == xp.float32 else xp.complex128


def check_holomorphic(xp: Any, evaluate: Callable[[Any], Any], x_flat: Any, f0: Any) -> None:
    """Refuse a non-holomorphic f before the complex-step method is applied to it.

    Evaluates f at ``x + i t v``, ``x + t v`` and ``x - t v`` (one call) for a fixed
    direction ``v`` and compares ``Im f(x + i t v) / t`` with the central difference.
    """
    n = x_flat.shape[0]
    if n == 0:
        return
    eps = float(xp.finfo(x_flat.dtype).eps)
    direction = np.mod(np.arange(1, n + 1) * 0.6180339887498949, 1.0) + 0.5  # no zeros
    v = xp.asarray(direction, dtype=x_flat.dtype, device=_device(x_flat))
    scale = 1.0
    if _concrete(x_flat):
        with np.errstate(all="ignore"):
            absx = np.abs(np.asarray(_host(x_flat)))
        scale = max(float(np.max(absx[np.isfinite(absx)], initial=0.0)), 1.0)
    t = eps ** 0.5 * scale  # small: f may vary faster than x's scale (sin at large x)
    work = xp.astype(x_flat, _complex_of(xp, x_flat.dtype))
    tv = xp.astype(v * t, work.dtype)
    with np.errstate(all="ignore"):  # non-finite x: non-finite points, skipped below
        points = xp.stack([work + tv * 1j, work + tv, work - tv], axis=0)
    y = evaluate(points)
    if not xp.isdtype(y.dtype, "complex floating"):
        raise TypeError(
            "method='complex_step' needs a holomorphic f, but f returned real values at "
            "complex points (abs, real, a cast to float, ...): the result would be a silent "
            "zero. Use method='central'."
        )
    if not (_concrete(y) and _concrete(f0)):
        return  # traced (jax.jit): no data-dependent check possible
    with np.errstate(all="ignore"):
        cs = np.asarray(_host(xp.imag(y[0, :]))) / t
        re = np.real(np.asarray(_host(y[1, :])) - np.asarray(_host(y[2, :]))) / (2 * t)
        f_abs = np.abs(np.asarray(_host(f0)))
    ok = np.isfinite(cs) & np.isfinite(re)
    if not ok.any():
        return
    tol = 0.05  # conj, abs, real disagree by O(1): a loose bound avoids false alarms
    atol = 1e3 * eps * (float(np.max(f_abs[np.isfinite(f_abs)], initial=0.0)) + 1.0) / t
    bad = ok & (np.abs(cs - re) > tol * (np.abs(cs) + np.abs(re)) + atol)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"method='complex_step' needs a holomorphic f, but along a test direction the "
            f"complex step gives {cs[i]:.6g} and a real central difference {re[i]:.6g} for "
            f"output {i} (conj, abs, real or a branch cut make f non-holomorphic). Use "
            "method='central'."
        )


def _two_sided(meth: AbstractMethod) -> bool:
    if isinstance(meth, ComplexStep) or not isinstance(meth, Stencil):
        return False
    offs = meth.float_offsets
    return min(offs) < 0 < max(offs)


def one_sided_retry(xp: Any, meth: AbstractMethod, f0: Any, values: Any, status: Any,
                    run: Callable[[AbstractMethod, np.ndarray, float], tuple[Any, Any]]) -> tuple[
                        Any, Any]:
    """Replace NON_FINITE entries of a two-sided stencil by a finite one-sided estimate.

    ``values``/``status`` are (E, M) (or (E,) for elementwise); ``run(method, rows,
    factor)`` evaluates ``method`` with the steps times ``factor`` for the entry rows
    ``rows`` and returns (len(rows), M) arrays. Only entries where f(x) is finite are
    retried, forward first, then backward. A one-sided estimate is accepted only if the
    same stencil at half the step agrees with it to ``1e3 * eps**(p/(p+q))`` relative:
    at a singular edge (sqrt or log with the edge inside the step) the two disagree and
    the entry stays NON_FINITE instead of taking a meaningless value.
    """
    if not _two_sided(meth) or not _concrete(status):
        return values, status
    f0_ok = xp.isfinite(f0) if values.ndim == 1 else xp.expand_dims(xp.isfinite(f0), 0)
    bad = (status == int(Status.NON_FINITE)) & f0_ok
    if not bool(xp.any(bad)):  # the usual case: one scalar, not the (E, M) mask, to host
        return values, status
    bad_host = np.asarray(_host(bad))
    if bad_host.size == 0:
        return values, status
    rows = np.nonzero(bad_host.reshape(bad_host.shape[0], -1).any(axis=1))[0]
    if rows.size == 0:
        return values, status
    n = values.shape[0]
    pos = np.zeros(n, dtype=np.int64)
    pos[rows] = np.arange(rows.size)
    chosen = np.zeros(n, dtype=bool)
    chosen[rows] = True
    dev = _device(values)
    take = xp.asarray(pos, device=dev)
    mask = xp.asarray(chosen, device=dev)
    if values.ndim == 2:
        mask = xp.expand_dims(mask, 1)
    code = xp.asarray(int(Status.ONE_SIDED), dtype=status.dtype)
    eps = float(xp.finfo(values.dtype).eps) if xp.isdtype(values.dtype, "real floating") else (
        float(np.finfo(np.float64).eps))
    tol = 1e3 * eps ** (meth.order / (meth.order + meth.deriv))
    for stencil in (forward, backward):
        side = stencil(order=meth.order, deriv=meth.deriv)
        v1, s1 = run(side, rows, 1.0)
        v2, s2 = run(side, rows, 0.5)
        with np.errstate(all="ignore"):
            agree = xp.abs(v1 - v2) <= tol * xp.maximum(xp.abs(v1), xp.abs(v2)) + tol * eps
        ok = (s1 == int(Status.SUCCESS)) & (s2 == int(Status.SUCCESS)) & agree
        v1, ok = xp.take(v1, take, axis=0), xp.take(ok, take, axis=0)
        use = bad & mask & ok
        values = xp.where(use, v1, values)
        status = xp.where(use, code, status)
        bad = bad & ~use
    return values, status


def _concrete(a: Any) -> bool:
    """False for traced arrays (jax.jit), whose values cannot be read on the host."""
    if "Tracer" in type(a).__name__:
        return False
    try:
        np.asarray(_host(a))
    except Exception:  # noqa: BLE001 - any conversion failure means: not concrete
        return False
    return True


def _host(a: Any) -> Any:
    from .result import _to_host

    return _to_host(a)


def _device(x: Any) -> Any:
    from array_api_compat import device

    return device(x)
