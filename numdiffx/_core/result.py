"""The one result type of every operation (``full_output=True``) and the status codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from numdiffx.backends import register_result_type, to_host

__all__ = ["DiffResult", "Status"]


class Status(enum.IntEnum):
    """Per-element outcome. ``Status(code).message`` is the text users should read.

    SUCCESS means one thing for every step rule: the element's error estimate is within
    the tolerance (the rule's ``atol + rtol * |value|``; for rules without a tolerance,
    what the stencil promises at its step, ``100 * eps**(p/(p+q))`` relative, never
    looser than ``100 * sqrt(eps)``). Every
    other status keeps the best value it has, except NON_FINITE and STEP_TOO_SMALL,
    whose value is NaN.

    At a stationary point of a smooth f (derivative, gradient and jacobian of a real f)
    a first derivative and its output are ~0, and so was every tolerance: there it is
    judged against how much it varies, ``|f''| L`` with ``L`` the scale f' varies on
    (``max(|x|, typical)``, or less where f'' itself changes sooner), with ``100
    sqrt(eps)`` relative. f's curvature is measured only for the elements that would
    fail otherwise, by the central second difference at the auto step and twice it, and
    counts where it is visible above round-off, the same at both steps, and ten times
    the derivative and its output. A constant and ``1e20 + x`` (the same bits) stay
    ROUNDOFF; a second difference that grows as the step shrinks (``|x|`` at 0, a
    symmetric kink) is never SUCCESS, also under ``steps.adaptive()`` (NONSMOOTH, the
    one-sided disagreement as the error). The complex step measures its truncation at
    twice the step and is NONSMOOTH where it exceeds a central difference's
    ``100 eps**(2/3)``. (docs: "Adaptive steps", "At a stationary point".)

    - ``SUCCESS`` (0): the estimate is within the tolerance.
    - ``NON_FINITE`` (1): f gave NaN/inf at x or at a stencil point; the value is NaN.
    - ``STEP_TOO_SMALL`` (2): ``x + h == x`` in the dtype; the value is NaN.
    - ``ERROR_INCREASED`` (3): adaptive: the estimate grew as the step shrank before the
      tolerance was met (noise or a kink near x); the best value is kept.
    - ``MAX_ITERATIONS`` (4): adaptive: the steps ran out before the tolerance was met.
    - ``ONE_SIDED`` (5): f was not finite on one side: a one-sided stencil gave the value.
    - ``NONSMOOTH`` (6): truncation: the estimate from the stencil's own points exceeds
      the tolerance (f curves on a scale too small for the step, or a kink, a jump or
      noise lies within the stencil; for the complex step, its truncation measured at
      twice the step; under ``steps.adaptive()``, a symmetric kink at x).
    - ``ROUNDOFF`` (7): cancellation: the round-off of f divided by the step exceeds the
      tolerance (f is huge compared with its change over the step).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> r = nd.derivative(np.exp, np.array([1.0], dtype=np.float32), step=1e-9,
    ...                   full_output=True)
    >>> r.status_names.tolist(), bool(np.isnan(r.value[0]))
    (['STEP_TOO_SMALL'], True)
    """

    SUCCESS = 0
    NON_FINITE = 1
    STEP_TOO_SMALL = 2
    ERROR_INCREASED = 3
    MAX_ITERATIONS = 4
    ONE_SIDED = 5
    NONSMOOTH = 6
    ROUNDOFF = 7

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.SUCCESS: "converged: the error estimate is within the tolerance",
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
    Status.NONSMOOTH: (
        "truncation: the error estimate from the stencil's own points exceeds the tolerance "
        "(f curves on a scale too small for this step -- the default step assumes "
        "max(|x|, typical) -- or has a kink, a jump or noise within the stencil); the value "
        "is kept. Try step=nd.steps.adaptive(), a typical= that fits f's scale, or check f "
        "for a kink at x."
    ),
    Status.ROUNDOFF: (
        "cancellation: |f| is so large compared with its change over the step that its "
        "round-off, divided by the step, exceeds the tolerance; the value is kept. Subtract "
        "a constant from f, use a larger step, or method='complex_step'."
    ),
}


def _describe(a: Any) -> str:
    if a is None:
        return "None"
    shape = tuple(getattr(a, "shape", ()))
    return f"<{type(a).__name__} shape={shape} dtype={getattr(a, 'dtype', '?')}>"


@dataclass(frozen=True)
class DiffResult:
    """What ``full_output=True`` returns, for every operation and backend.

    Attributes
    ----------
    value : array
        The derivative (Jacobian layout ``out.shape + in.shape``), NaN where ``status``
        is NON_FINITE or STEP_TOO_SMALL; the other statuses keep the best value.
    error : array
        An estimate of ``|value - true|`` of the same shape as ``value``, from the
        points the rule evaluated anyway (every rule has one; NaN where the value is).
    step : array
        The step actually used, ``(x + h) - x``: per input element (x's shape) for
        one-step rules, or per value element (the step of the level the chosen estimate
        came from, value's shape) for ``steps.adaptive()`` and sparse results.
    nfev : int
        Number of evaluations of f (points; a batched call of m points counts m, its
        sentinel row included).
    status : array of int8
        Per-element :class:`Status` codes, same shape as ``value`` (sparse results: per
        stored nonzero).

    ``success`` is the boolean mask ``status == SUCCESS`` (as scipy.differentiate),
    ``status_names`` the codes' names, and :meth:`raise_for_status` raises naming the
    failing elements.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 2.0])
    >>> r = nd.jacobian(np.sin, x, step=nd.steps.adaptive(), full_output=True)
    >>> true_error = np.abs(r.value - np.diag(np.cos(x)))
    >>> bool(np.all(true_error <= r.error)), r.success.tolist(), r.step.shape
    (True, [[True, True], [True, True]], (2, 2))
    >>> r.status_counts()
    {'SUCCESS': 4}
    """

    value: Any
    error: Any
    step: Any
    nfev: int
    status: Any

    @property
    def success(self) -> Any:
        """Boolean array, True where the status is SUCCESS (the status' namespace)."""
        return self.status == int(Status.SUCCESS)

    @property
    def status_names(self) -> np.ndarray:
        """The status names per element, as a host numpy array of str."""
        codes = np.asarray(to_host(self.status))
        names = np.array([s.name for s in Status])
        return names[codes.astype(np.int64)]

    def status_counts(self) -> dict[str, int]:
        """``{status name: number of elements}``, SUCCESS first."""
        codes = np.asarray(to_host(self.status)).ravel()
        found = np.bincount(codes.astype(np.int64), minlength=len(Status))
        return {Status(c).name: int(k) for c, k in enumerate(found) if k}

    def __repr__(self) -> str:
        err = ""
        if self.error is not None:
            host = np.asarray(to_host(self.error), dtype=np.float64)
            finite = host[np.isfinite(host)]
            err = f", max error estimate {finite.max():.3g}" if finite.size else ""
        return (f"DiffResult(value={_describe(self.value)}{err}, nfev={self.nfev}, "
                f"status={self.status_counts()})")

    def raise_for_status(self) -> DiffResult:
        """Raise ``FloatingPointError`` naming the failing elements; return self otherwise."""
        codes = np.asarray(to_host(self.status))
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


register_result_type(DiffResult, ("value", "error", "step", "status"), ("nfev",))
