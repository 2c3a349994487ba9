"""The one result type of every operation (``full_output=True``) and the status codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["DiffResult", "Status"]


class Status(enum.IntEnum):
    """Per-element outcome. ``Status(code).message`` is the text users should read.

    - ``SUCCESS`` (0): the value is valid (adaptive: the tolerance was met).
    - ``NON_FINITE`` (1): f gave NaN/inf at x or at a stencil point; the value is NaN.
    - ``STEP_TOO_SMALL`` (2): ``x + h == x`` in the dtype; the value is NaN, not a
      silent 0.
    - ``ERROR_INCREASED`` (3): adaptive steps only: the estimate grew before the
      tolerance was met; the best value is kept.
    - ``MAX_ITERATIONS`` (4): adaptive steps only: the steps ran out; the best value
      is kept.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> r = nd.derivative(np.exp, np.array([1.0], dtype=np.float32), step=1e-9,
    ...                   full_output=True)
    >>> nd.Status(int(r.status[0])).name, bool(np.isnan(r.value[0]))
    ('STEP_TOO_SMALL', True)
    """

    SUCCESS = 0
    NON_FINITE = 1
    STEP_TOO_SMALL = 2
    ERROR_INCREASED = 3
    MAX_ITERATIONS = 4
    ONE_SIDED = 5

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.SUCCESS: "converged: the estimate is within the requested tolerance",
    Status.NON_FINITE: (
        "f returned NaN or inf at x or at a stencil point, or the step is not finite; the "
        "value is NaN. Check the domain of f near x, or use a one-sided method."
    ),
    Status.STEP_TOO_SMALL: (
        "x + h == x in this dtype: the step is below the resolution of x, so the value is "
        "NaN instead of a silent zero. Use step='auto' or a larger, relative step."
    ),
    Status.ERROR_INCREASED: (
        "the error estimate grew as the step shrank before reaching the tolerance; the "
        "best estimate so far is returned (often noise or a kink near x)."
    ),
    Status.MAX_ITERATIONS: (
        "the step sequence ended before reaching the tolerance; the best estimate so far "
        "is returned. Raise max_steps or loosen atol/rtol."
    ),
    Status.ONE_SIDED: (
        "f was not finite on one side of x (a domain edge within the stencil); the one-sided "
        "stencil of the same order on the finite side gave this value. Near the edge it can "
        "be inaccurate: pass step=nd.steps.adaptive(bounds=(lo, hi)) for controlled steps."
    ),
}


@dataclass(frozen=True)
class DiffResult:
    """What ``full_output=True`` returns, for every operation and backend.

    Attributes
    ----------
    value : array
        The derivative (Jacobian layout ``out.shape + in.shape``), NaN where ``status``
        is not SUCCESS (or ERROR_INCREASED / MAX_ITERATIONS, which keep the best value).
    error : array or None
        An error estimate of the same shape as ``value`` where the method provides one
        (adaptive steps), else ``None``.
    step : array
        The step actually used, ``(x + h) - x``: per input element (x's shape), or,
        with ``steps.adaptive()``, per value element (the step of the level the chosen
        estimate came from, value's shape).
    nfev : int
        Number of evaluations of f (points; a batched call of m points counts m).
    status : array of int8
        Per-element ``Status`` codes, same shape as ``value``.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 2.0])
    >>> r = nd.jacobian(np.sin, x, step=nd.steps.adaptive(), full_output=True)
    >>> true_error = np.abs(r.value - np.diag(np.cos(x)))
    >>> bool(np.all(true_error <= r.error)), r.status.tolist(), r.step.shape
    (True, [[0, 0], [0, 0]], (2, 2))
    """

    value: Any
    error: Any
    step: Any
    nfev: int
    status: Any

    @property
    def success(self) -> bool:
        """True when every element has status SUCCESS."""
        import numpy as np

        return bool(np.all(np.asarray(_to_host(self.status)) == Status.SUCCESS))

    def raise_for_status(self) -> DiffResult:
        """Raise ``FloatingPointError`` naming the failing elements; return self otherwise."""
        import numpy as np

        codes = np.asarray(_to_host(self.status))
        bad = np.argwhere(codes != Status.SUCCESS)
        if bad.size == 0:
            return self
        lines = []
        for code in sorted({int(c) for c in codes[codes != Status.SUCCESS].ravel()}):
            where = np.argwhere(codes == code)
            first = ", ".join(str(tuple(int(i) for i in w)) for w in where[:5])
            more = f" and {len(where) - 5} more" if len(where) > 5 else ""
            lines.append(f"{Status(code).name} at {first}{more}: {Status(code).message}")
        raise FloatingPointError(f"{len(bad)} element(s) did not succeed:\n  " + "\n  ".join(lines))


def _to_host(a: Any) -> Any:
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return a
