"""Tolerances derived from dtype eps and the method's order, in one place.

At the optimal step a stencil of truncation order p for derivative order q has a
relative error of about eps**(p / (p + q)) (the complex step: about eps). SAFETY
absorbs the functions' derivative ratios and the use of a nominal, not exact, step.
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd

SAFETY = 200.0


def eps_of(dtype: object) -> float:
    return float(np.finfo(np.dtype(str(dtype).split(".")[-1])).eps)


def rtol_for(method: nd.AbstractMethod, dtype: object, deriv: int | None = None) -> float:
    """Expected relative error of ``method`` in ``dtype`` with the auto step."""
    eps = eps_of(dtype)
    if isinstance(method, nd.ComplexStep):
        return SAFETY * eps
    if deriv is not None:
        method = method.with_deriv(deriv)
    p, q = method.order, method.deriv
    return SAFETY * eps ** (p / (p + q))


def exact_rtol(dtype: object) -> float:
    """For results that are exact up to rounding (polynomials within the stencil's degree)."""
    return 1e4 * eps_of(dtype)


def batch_checks(calls: int, mode: str = "batched") -> int:
    """Evaluations a batched or vmapped computation adds to check itself: one sentinel
    row (x itself) per call of f, and, under vmap, once the first perturbed point alone
    (vmap transforms an f written for one point; a batched f is checked by the sentinel)."""
    return calls + (mode == "vmap")
