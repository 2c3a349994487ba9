"""Reference problems for step selection: f written once against the array namespace.

Every problem is ``f(xp, x)`` (elementwise, any namespace) with its exact first
derivative (and the second where it is easy), the sample points and the domain. The
tests and ``asv_bench/`` (benchmarks and compare scripts) iterate over :data:`PROBLEMS`.
Exact derivatives are host functions of float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PROBLEMS", "Problem", "problem"]


@dataclass(frozen=True)
class Problem:
    """One differentiation problem.

    Attributes
    ----------
    name : str
        Short identifier.
    f : callable
        ``f(xp, x)``: elementwise, written with ``xp.*`` operations only.
    df : callable
        Exact first derivative, ``df(x)`` on float64 numpy arrays.
    d2f : callable or None
        Exact second derivative where easy.
    points : tuple of float
        Sample points (away from singularities).
    domain : tuple of float
        ``(lo, hi)`` where f is defined (``-inf``/``inf`` when unrestricted).
    smooth : bool
        Analytic and well conditioned near the points: adaptive central differences
        should reach ~1e-12 relative error there in float64.
    typical : float
        Scale on which f varies near the points (a hint for ``steps.*(typical=...)``).
    notes : str
        Where the problem comes from and what makes it hard.
    """

    name: str
    f: Callable[[Any, Any], Any]
    df: Callable[[np.ndarray], np.ndarray]
    d2f: Callable[[np.ndarray], np.ndarray] | None
    points: tuple[float, ...]
    domain: tuple[float, float] = (-np.inf, np.inf)
    smooth: bool = True
    typical: float = 1.0
    notes: str = ""

    def fn(self, xp: Any) -> Callable[[Any], Any]:
        """``f`` bound to the namespace ``xp``: a one-argument function."""
        return lambda x: self.f(xp, x)


def _squire_trapp(xp: Any, x: Any) -> Any:
    return xp.exp(x) / xp.sqrt(xp.sin(x) ** 3 + xp.cos(x) ** 3)


def _squire_trapp_d(x: np.ndarray) -> np.ndarray:
    s, c = np.sin(x), np.cos(x)
    g = s**3 + c**3
    dg = 3 * s**2 * c - 3 * c**2 * s
    return np.exp(x) / np.sqrt(g) - 0.5 * np.exp(x) * dg / g**1.5


PROBLEMS: tuple[Problem, ...] = (
    Problem("exp", lambda xp, x: xp.exp(x), np.exp, np.exp, (-2.0, 0.0, 1.0, 5.0)),
    Problem("log_near_1e-3", lambda xp, x: xp.log(x), lambda x: 1 / x, lambda x: -1 / x**2,
            (1e-3, 2e-3, 5e-3), domain=(0.0, np.inf), typical=1e-3,
            notes="log near 0: a relative step stays inside the domain; a large absolute one "
                  "does not."),
    Problem("sqrt", lambda xp, x: xp.sqrt(x), lambda x: 0.5 / np.sqrt(x),
            lambda x: -0.25 * x**-1.5, (0.5, 1.0, 4.0, 100.0), domain=(0.0, np.inf)),
    Problem("cbrt_near_0", lambda xp, x: xp.sign(x) * xp.abs(x) ** (1.0 / 3.0),
            lambda x: np.abs(x) ** (-2.0 / 3.0) / 3.0, None, (1e-4, -1e-3, 1e-2),
            typical=1e-4, notes="x**(1/3) near (not at) its branch point 0."),
    Problem("atan", lambda xp, x: xp.atan(x), lambda x: 1 / (1 + x**2),
            lambda x: -2 * x / (1 + x**2) ** 2, (-3.0, 0.5, 10.0)),
    Problem("sin_at_1e3", lambda xp, x: xp.sin(x), np.cos, lambda x: -np.sin(x),
            (1e3, 1e3 + 0.5), notes="f varies on an absolute scale of 1 far from 0; a "
                                     "relative step is 1000x too large."),
    Problem("exp50", lambda xp, x: xp.exp(50.0 * x), lambda x: 50 * np.exp(50 * x),
            lambda x: 2500 * np.exp(50 * x), (-0.1, 0.0, 0.3), typical=0.02,
            notes="scaled exponential: the natural scale is 1/50."),
    Problem("fast_oscillation", lambda xp, x: x + 1e-4 * xp.sin(1e4 * x),
            lambda x: 1 + np.cos(1e4 * x), lambda x: -1e4 * np.sin(1e4 * x),
            (0.3, 1.0), typical=1e-4, smooth=False,
            notes="small amplitude, fast oscillation: the derivative is O(1) on a scale "
                  "of 1e-4, invisible to steps of 1e-3. Ill-conditioned (|f| ~ 1e4 * scale "
                  "* |f'|), so round-off limits it to ~1e-10: not counted as smooth."),
    Problem("poly_cubic", lambda xp, x: x**3 - 2.0 * x + 1.0, lambda x: 3 * x**2 - 2,
            lambda x: 6 * x, (-1.5, 0.25, 2.0)),
    Problem("poly_deg8", lambda xp, x: (x - 0.5) ** 8, lambda x: 8 * (x - 0.5) ** 7,
            lambda x: 56 * (x - 0.5) ** 6, (-1.0, 1.5, 3.0)),
    Problem("reciprocal", lambda xp, x: 1.0 / x, lambda x: -1 / x**2, lambda x: 2 / x**3,
            (0.1, 1.0, -2.0, 50.0), notes="pole at 0: sample points stay away from it."),
    Problem("squire_trapp", _squire_trapp, _squire_trapp_d, None, (1.5,),
            notes="Squire & Trapp (1998), SIAM Rev. 40: e^x / sqrt(sin^3 x + cos^3 x) at "
                  "x = 1.5, the classic hard case for real finite differences."),
    Problem("ridders_exp_sin", lambda xp, x: xp.exp(x) * xp.sin(x),
            lambda x: np.exp(x) * (np.sin(x) + np.cos(x)), lambda x: 2 * np.exp(x) * np.cos(x),
            (1.0, 3.0), notes="Ridders (1982)-style smooth product test function."),
    Problem("ridders_tan", lambda xp, x: xp.tan(x), lambda x: 1 / np.cos(x) ** 2,
            lambda x: 2 * np.tan(x) / np.cos(x) ** 2, (1.0, 1.5),
            typical=0.05, notes="tan near its pole pi/2: x = 1.5 is 0.07 away from it."),
    Problem("runge", lambda xp, x: 1.0 / (1.0 + 25.0 * x**2),
            lambda x: -50 * x / (1 + 25 * x**2) ** 2, None, (0.2, 0.7),
            typical=0.1, notes="Runge's function: complex poles at +-0.2i."),
)


def problem(name: str) -> Problem:
    """The problem named ``name`` from :data:`PROBLEMS`."""
    for p in PROBLEMS:
        if p.name == name:
            return p
    raise ValueError(f"no reference problem named {name!r}; known: "
                     f"{[p.name for p in PROBLEMS]}.")
