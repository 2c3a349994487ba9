"""The complex-step guard: refuse a non-holomorphic f before any result is computed.

The complex-step method is only valid for a holomorphic f. A real-valued f at complex
points (``abs``, ``real``) would give a silent zero and ``conj`` the wrong sign; one
complex-step and one central difference along a fixed direction (3 evaluations) detect
both.
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
    if not backend.is_traced(x_flat):
        with np.errstate(all="ignore"):
            absx = np.abs(to_host(x_flat))
        scale = max(float(np.max(absx[np.isfinite(absx)], initial=0.0)), 1.0)
    t = eps ** 0.5 * scale  # small: f may vary faster than x's scale (sin at large x)
    work = xp.astype(x_flat, complex_of(xp, x_flat.dtype))
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
    if backend.is_traced(y) or backend.is_traced(f0):
        return  # traced (jax.jit): no data-dependent check possible
    host = to_host
    with np.errstate(all="ignore"):
        cs = np.asarray(host(xp.imag(y[0, :]))) / t
        re = np.real(np.asarray(host(y[1, :])) - np.asarray(host(y[2, :]))) / (2 * t)
        f_abs = np.abs(np.asarray(host(f0)))
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
