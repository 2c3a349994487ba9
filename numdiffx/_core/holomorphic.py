"""The complex-step guard: refuse a non-holomorphic f before any result is computed.

The complex-step method is only valid for a holomorphic f. A real-valued f at complex
points (``abs``, ``real``) would give a silent zero and ``conj`` the wrong sign; complex
steps and real central differences along a fixed direction, at two steps (8
evaluations), detect both (:func:`check`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import device as _device

from numdiffx.backends import to_host

__all__ = ["check", "check_complex_input", "complex_of"]


def complex_of(xp: Any, dtype: Any) -> Any:
    """The complex dtype matching a real one (complex64 for float32)."""
    return xp.complex64 if dtype == xp.float32 else xp.complex128


def check(xp: Any, backend: Any, evaluate: Callable[[Any], Any], x_flat: Any, f0: Any) -> None:
    """Refuse a non-holomorphic f before the complex-step method is applied to it.

    Along a fixed direction ``v`` (each element scaled by ``max(|x_i|, 1)``), at two
    steps ``t`` and ``t/4``, compares what the complex step gives with real central
    differences, for the slope and the curvature:

    - ``Im[f(x + i t v + t v) + f(x + i t v - t v)] / (2 t)`` with ``(f(x+tv) - f(x-tv)) / 2t``;
    - ``Im[f(x + i t v + t v) - f(x + i t v - t v)] / (2 t**2)`` with the second difference.

    For a holomorphic f both pairs differ by truncation alone, ``O(t**2)``: a quarter of
    the step shrinks the difference sixteenfold. For ``conj``, ``abs``, ``real`` or a
    branch cut the difference does not shrink. A slope near zero (a likelihood at its
    maximum: +609.7 against -609.7 at one step, from the curvature term) therefore no
    longer reads as a sign flip, and a non-holomorphic f at a stationary point is still
    caught by its curvature where the round-off allows. f is never called at complex
    points with a zero imaginary part (a real code path behind ``np.iscomplex`` would
    crash there): the real points go in a real call. 8 evaluations, two calls.
    """
    n = x_flat.shape[0]
    if n == 0:
        return
    eps = float(xp.finfo(x_flat.dtype).eps)
    direction = np.mod(np.arange(1, n + 1) * 0.6180339887498949, 1.0) + 0.5  # no zeros
    traced = backend.is_traced(x_flat)
    if not traced:
        with np.errstate(all="ignore"):
            absx = np.abs(to_host(x_flat))
        direction = direction * np.where(np.isfinite(absx), np.maximum(absx, 1.0), 1.0)
    v = xp.asarray(direction, dtype=x_flat.dtype, device=_device(x_flat))
    # sqrt(eps), the method's own relative step: a larger one can leave f's scale
    # (exp(cos(300 x)) at x = 1e3 read as non-holomorphic at eps**(1/4)); the price is a
    # curvature test that sees only curvatures above ~1e3 |f| / |x|**2
    t1 = eps ** 0.5
    steps = (t1, t1 / 4.0)
    cdt = complex_of(xp, x_flat.dtype)
    work = xp.astype(x_flat, cdt)
    with np.errstate(all="ignore"):  # non-finite x: non-finite points, skipped below
        real = xp.stack([x_flat + sign * t * v for t in steps for sign in (1.0, -1.0)], axis=0)
        cplx = xp.stack([work + xp.astype(t * v, cdt) * (1j + sign) for t in steps
                         for sign in (1.0, -1.0)], axis=0)
    yc = evaluate(cplx)
    if not xp.isdtype(yc.dtype, "complex floating"):
        raise TypeError(
            "method='complex_step' needs a holomorphic f, but f returned real values at "
            "complex points (abs, real, a cast to float, ...): the result would be a silent "
            "zero. Use method='central'."
        )
    yr = evaluate(real)
    if traced or backend.is_traced(yc) or backend.is_traced(f0):
        return  # traced (jax.jit): no data-dependent check possible
    _verdict(eps, steps, np.asarray(to_host(yr)), np.asarray(to_host(yc)),
             np.asarray(to_host(f0)))


def _verdict(eps: float, steps: tuple[float, float], yr: np.ndarray, yc: np.ndarray,
             f0: np.ndarray) -> None:
    """Raise where a difference between the complex step and the real differences does
    not shrink with the step (see :func:`check`); (4, M) values at ``x +- t v`` and
    ``x + i t v +- t v`` for both steps, ``f(x)`` (M,)."""
    with np.errstate(all="ignore"):
        f_abs = np.abs(np.real(f0))
        noise = 1e3 * eps * (float(np.max(f_abs[np.isfinite(f_abs)], initial=0.0)) + 1.0)
        pairs = []
        for k, t in enumerate(steps):
            plus, minus = yr[2 * k], yr[2 * k + 1]
            cp, cm = yc[2 * k], yc[2 * k + 1]
            slope = (np.imag(cp + cm) / (2 * t), np.real(plus - minus) / (2 * t), noise / t)
            curve = (np.imag(cp - cm) / (2 * t * t),
                     np.real(plus + minus - 2 * np.real(f0)) / (t * t), 4 * noise / (t * t))
            pairs.append((slope, curve))
        for order in range(2):
            cs1, re1, _ = pairs[0][order]
            cs2, re2, floor = pairs[1][order]
            d1, d2 = np.abs(cs1 - re1), np.abs(cs2 - re2)
            ok = np.isfinite(d1) & np.isfinite(d2)
            # each method settled (its two steps agree better than the two methods do):
            # a step beyond f's scale (sin(300 x) at x = 1e3) moves both, so it is not
            # read as non-holomorphic
            settled = np.maximum(np.abs(cs1 - cs2), np.abs(re1 - re2)) < d2 / 4.0
            bad = ok & settled & (d2 > floor + 0.05 * (np.abs(cs2) + np.abs(re2))) & (
                d2 > d1 / 4.0)
            if bad.any():
                i = int(np.argmax(bad))
                what = "slope" if order == 0 else "curvature"
                raise ValueError(
                    f"method='complex_step' needs a holomorphic f, but along a test direction "
                    f"the complex step gives a {what} of {cs2[i]:.6g} and real differences "
                    f"{re2[i]:.6g} for output {i}, apart at both steps tried (conj, abs, "
                    "real or a branch cut make f non-holomorphic). Use method='central'.")


def check_complex_input(xp: Any, backend: Any, evaluate: Callable[[Any], Any], x_flat: Any,
                        f0: Any, names: Any) -> None:
    """Complex inputs are differentiated as a holomorphic f (df/dz): refuse an f that is
    not, instead of silently returning its derivative along the real axis.

    Four evaluations, one call: f at ``x +- t v`` and ``x +- i t v`` for a fixed direction
    ``v``; a holomorphic f has the same derivative along both axes (Cauchy-Riemann).
    """
    n = x_flat.shape[0]
    if n == 0:
        return
    if not xp.isdtype(f0.dtype, "complex floating"):
        raise TypeError(
            f"{', '.join(names)} is complex but f returns real values ({f0.dtype}): a "
            "real-valued function of a complex variable (abs, a loss) is not holomorphic, so "
            "it has no complex derivative df/dz. Differentiate with respect to the real and "
            "imaginary parts instead: pass real arrays (x.real and x.imag, or "
            "torch.view_as_real(x)).")
    eps = float(xp.finfo(x_flat.dtype).eps)
    direction = np.mod(np.arange(1, n + 1) * 0.6180339887498949, 1.0) + 0.5  # no zeros
    scale = 1.0
    if not backend.is_traced(x_flat):
        with np.errstate(all="ignore"):
            absx = np.abs(to_host(x_flat))
        scale = max(float(np.max(absx[np.isfinite(absx)], initial=0.0)), 1.0)
    t = eps ** (1.0 / 3.0) * scale
    tv = xp.asarray(direction * t, dtype=x_flat.dtype, device=_device(x_flat))
    with np.errstate(all="ignore"):
        points = xp.stack([x_flat + tv, x_flat - tv, x_flat + tv * 1j, x_flat - tv * 1j],
                          axis=0)
    y = evaluate(points)
    if backend.is_traced(y):
        return
    host = to_host(y)
    with np.errstate(all="ignore"):
        along_real = (host[0] - host[1]) / (2 * t)
        along_imag = (host[2] - host[3]) / (2j * t)
        f_abs = float(np.max(np.abs(to_host(f0)), initial=0.0))
    ok = np.isfinite(along_real) & np.isfinite(along_imag)
    tol = 1e-4 * (np.abs(along_real) + np.abs(along_imag)) + 1e3 * eps ** (2.0 / 3.0) * (
        f_abs + 1.0) / scale
    bad = ok & (np.abs(along_real - along_imag) > tol)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"f is not holomorphic in {', '.join(names)} (complex): along a test direction "
            f"its derivative along the real axis is {along_real[i]:.6g} and along the "
            f"imaginary axis {along_imag[i]:.6g} (output {i}); conj, abs, real or |z|**2 make "
            "f non-holomorphic. numdiffx differentiates complex inputs as holomorphic "
            "functions (df/dz); for any other f differentiate with respect to the real and "
            "imaginary parts: pass real arrays (x.real and x.imag, or torch.view_as_real(x)).")
