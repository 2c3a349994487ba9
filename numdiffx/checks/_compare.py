"""The comparison: an element fails only when
``|numerical - analytical| > FD error estimate + atol + rtol * |analytical|``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numdiffx._core.stencils import ComplexStep, resolve_method

from ._problem import Slot

__all__ = ["Mismatch", "default_tolerances", "excess", "tolerance_terms"]


def default_tolerances(dtype: Any, method: object = "central", deriv: int = 1
                       ) -> tuple[float, float]:
    """(atol, rtol) that numdiffx's checks use by default for ``dtype``.

    The finite difference's own error is estimated per element and added to the
    tolerance separately (see :func:`numdiffx.checks.finite_difference_error`), so atol
    and rtol only cover what that estimate cannot see: rounding in the analytical
    derivative itself and the estimate's own uncertainty. ``2**8 * eps ** (p / (p + q))``
    for a stencil of order p and derivative order q: float64 central 9.4e-9 -- a 0.1%
    error in a gradient is still caught a hundred thousand times over -- float32
    6.2e-3. Never scaled by the size of the arrays.
    """
    name = str(dtype).replace("torch.", "").replace("complex128", "float64").replace(
        "complex64", "float32")
    eps = float(np.finfo(np.dtype(name)).eps)
    meth = resolve_method(method)
    if isinstance(meth, ComplexStep):
        tol = 2.0**8 * eps ** (2.0 / (2 + deriv)) if deriv > 1 else 2.0**8 * eps
    else:
        tol = 2.0**8 * eps ** (meth.order / (meth.order + deriv))
    return tol, tol


def excess(numerical: np.ndarray, analytical: np.ndarray, error: np.ndarray, atol: float,
           rtol: float) -> np.ndarray:
    """``|N - A| - (error + atol + rtol*|A|)``: > 0 fails; NaN anywhere fails (inf).

    A difference quotient that is exactly 0 -- f did not change at all -- carries no
    error bar: it is no evidence for a non-zero derivative (the step is below the
    output's resolution, or f is locally constant), and torch fails there too.
    """
    error = np.where(numerical == 0, 0.0, error)
    ex = np.abs(numerical - analytical) - (error + atol + rtol * np.abs(analytical))
    bad = np.isnan(ex) | (np.isnan(numerical) != np.isnan(analytical))
    return np.where(bad, np.inf, ex)


def tolerance_terms(error: float, atol: float, rtol_term: float) -> str:
    """'FD error 1.1e-08 (dominant) + atol 1e-09 + rtol*|analytical| 2e-09'."""
    terms = [("FD error estimate", error), ("atol", atol), ("rtol*|analytical|", rtol_term)]
    big = max(range(3), key=lambda t: terms[t][1])
    return " + ".join(f"{name} {value:.2g}" + (" (dominant)" if t == big else "")
                      for t, (name, value) in enumerate(terms))


@dataclass
class Mismatch:
    """One (output, input) block whose comparison failed, with what is needed to explain it.

    ``numerical``, ``analytical``, ``error`` and ``excess`` are (rows, columns) in the
    real view; ``analytical`` is None when autodiff found no path at all. For fast mode
    and forward-mode directional checks the block is 1 x 1 or a column.
    """

    out: Slot
    inp: Slot
    numerical: np.ndarray
    analytical: np.ndarray | None
    error: np.ndarray
    excess: np.ndarray
    steps: np.ndarray  # per column
    atol: float
    rtol: float
    status: np.ndarray | None = None
    refined: set[int] = field(default_factory=set)

    @property
    def analytical_values(self) -> np.ndarray:
        return np.zeros_like(self.numerical) if self.analytical is None else self.analytical

    def worst(self) -> tuple[int, int]:
        flat = int(np.argmax(self.excess))
        m, j = np.unravel_index(flat, self.excess.shape)
        return int(m), int(j)
