"""One-step rules: ``fixed``, ``relative`` and ``auto`` (the default).

Each gives one nominal step per step variable from ``|x|``, the dtype and the stencil;
:class:`AbstractNominalRule` runs any plan with it in one pass: the plan's steps
(``(x + h) - x``, the step the arithmetic actually takes), one evaluation of every
entry, and, where a two-sided stencil met NaN/inf on one side only, the one-sided
stencil on the finite side (status ONE_SIDED).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import device as _device

from numdiffx.backends import to_host

from ..plans.outcome import Outcome
from ..result import Status
from ..stencils import (
    COMPLEX_HESSIAN_FLOOR,
    COMPLEX_HESSIAN_STEP,
    AbstractMethod,
    ComplexStep,
    Stencil,
    backward,
    central,
    forward,
)
from .base import AbstractStepRule, positive_finite
from .diagnose import complex_step_truncation, diagnostic_weights, estimate
from .lane_estimate import fused, lane_estimate
from .onesided import one_sided_retry
from .stationary import rejudge_one_step

__all__ = ["DEFAULT_AUTO", "AbstractNominalRule", "auto", "fixed", "one_pass", "raised_order",
           "relative"]


_EPS: dict[tuple[type, Any], float] = {}


def dtype_eps(xp: Any, dtype: Any) -> float:
    """The machine epsilon of a float dtype (looked up once per dtype; keyed with the
    dtype's type, so one library's dtype is never compared with another's)."""
    key = (type(dtype), dtype)
    try:
        return _EPS[key]
    except KeyError:
        eps = _EPS[key] = float(xp.finfo(dtype).eps)
        return eps
    except TypeError:  # an unhashable dtype object
        return float(xp.finfo(dtype).eps)


def scaled(fresh: Any, factor: float) -> Any:
    """``factor * fresh`` for an array the caller just made (``at_least``'s): in place
    where the library allows (numpy, torch, cupy: no second array; jax rebinds). The
    same product, the same bits."""
    fresh *= factor
    return fresh


def at_least(xp: Any, a: Any, floor: float) -> Any:
    """``max(a, floor)`` elementwise, ``floor`` a positive float: the array's own ``clip``
    where it has one (one kernel, no array built from ``floor``), else the array API's
    ``maximum``. The same values either way (NaN stays NaN)."""
    if type(a) is np.ndarray:  # the ufunc itself: ndarray.clip goes through Python
        return np.maximum(a, floor)
    clip = getattr(a, "clip", None)
    if clip is not None:
        try:
            return clip(min=floor)
        except TypeError:  # a clip with another signature
            pass
    return xp.maximum(a, xp.asarray(floor, dtype=a.dtype, device=_device(a)))


class AbstractNominalRule(AbstractStepRule):
    """A rule whose step follows from ``|x|`` alone (one pass over the plan)."""

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any,
                method: AbstractMethod) -> Any:  # pragma: no cover - abstract
        """Positive nominal steps, one per element of ``abs_x`` (its shape and namespace)."""
        raise NotImplementedError

    def steps(self, plan: Any) -> Any:
        """The steps this rule gives ``plan`` (its step form, made representable)."""
        xp = plan.problem.xp

        def nominal(scale: Any, method: AbstractMethod) -> Any:
            return self.nominal(scale, xp=xp, dtype=scale.dtype, method=method)

        return plan.nominal_steps(nominal)

    def run(self, plan: Any, *, full_output: bool) -> Any:
        return one_pass(plan, self.steps(plan), full_output=full_output)


def one_pass(plan: Any, h: Any, *, full_output: bool, noise: float | None = None) -> Any:
    """Every entry of ``plan`` at the steps ``h`` (the plan's step form), the one-sided
    retry at domain edges, and, with ``full_output``, the estimate from the points
    (round-off at the relative ``noise`` of f where it exceeds the dtype's eps)."""
    xp = plan.problem.xp
    method = plan.estimate_method()
    extras = diagnostic_weights(method) if (full_output and plan.extras_ok) else ()
    d = plan.evaluate(h, extras=extras)
    values, status, retried = d.values, d.status, None
    if plan.one_sided_retry and not d.clean:
        values, status, retried = one_sided_retry(plan, h, values, status)
    error = None
    if full_output:  # the estimate and statuses cost passes only a DiffResult shows
        decided = _fused_estimate(plan, method, h, values, status, d, retried, noise)
        if decided is not None:
            error, status = decided
        else:
            error, status = estimate(plan, method, h, values, status, d.extras, noise=noise)
        if retried is not None:
            one_sided = status == int(Status.ONE_SIDED)
            error = xp.where(one_sided, retried, error)
        if noise is None:  # a stationary point of a visibly curved f (stationary.py)
            error, status = rejudge_one_step(plan, method, h, values, error, status,
                                             d.extras)
        # the complex step's truncation, measured at twice the step
        error, status = complex_step_truncation(plan, method, h, values, error, status)
    return Outcome(values, error, h, status)


def _fused_estimate(plan: Any, method: AbstractMethod, h: Any, values: Any, status: Any,
                    d: Any, retried: Any, noise: float | None) -> tuple[Any, Any] | None:
    """:func:`~.diagnose.estimate` in :func:`~.lane_estimate.lane_estimate`'s few numpy
    operations for a jvp (one entry: its step, its f(x), its values as the output scale)
    of ``central``/``forward``/``backward`` where every value is finite and evaluated;
    None elsewhere. A library's CPU arrays (torch) are read as numpy views of the same
    memory and the results handed back as its views (the same IEEE operations; XLA's
    division is not numpy's: jax stays on the engine's). The same bits up to subnormal
    intermediates (tests/test_lane_estimate.py)."""
    if (noise is not None or retried is not None or plan.name != "directional"
            or not fused(method) or len(d.extras) < 1):
        return None
    backend = plan.problem.backend
    arrays = (values, plan.estimate_steps(h), plan.f0_entries(), *d.extras)
    if type(values) is not np.ndarray:  # a CPU library array: its numpy view, or None
        if backend.eager_dispatch or str(_device(values)) != "cpu":
            return None
        try:
            arrays = tuple(np.asarray(a) for a in arrays)
        except (TypeError, RuntimeError, ValueError):
            return None
        if (any(type(a) is not np.ndarray for a in arrays)
                or arrays[0].dtype not in (np.float64, np.float32)):
            return None
        status = np.asarray(status)
    with np.errstate(all="ignore"):
        if (status.any() if not d.clean else False) or not np.isfinite(arrays[0]).all():
            return None
        out = lane_estimate(method, plan.problem.eps, arrays[1], arrays[0], None, None,
                            arrays[2], list(arrays[3:]))
    if out is None:
        return None
    if type(values) is np.ndarray:
        return out[0], out[1]
    return backend.from_host(out[0]), backend.from_host(out[1])


@dataclass(frozen=True)
class fixed(AbstractNominalRule):  # noqa: N801 - public lower-case constructor, like optax
    """The same absolute step ``h`` for every element (JacrevFinite's ``delta``), or
    one step per element.

    A plain number passed as ``step=`` means ``fixed(step)``. An array of x's size
    gives each flat element of x its own step: the steps another call chose, e.g.
    ``nd.steps.fixed(r.step)`` with ``r`` the ``DiffResult`` of a call with
    ``step=nd.steps.fitted()`` (reuse across an optimiser's iterations or a bootstrap;
    not for ``jvp``/``hvp``, whose step runs along a direction). Where ``x + h == x`` in
    the input's dtype the element gets NaN and status STEP_TOO_SMALL.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([1.0])
    >>> err = abs(nd.derivative(np.exp, x, step=nd.steps.fixed(1e-5))[0] - np.e)
    >>> bool(err < 1e-9)
    True
    >>> x = np.array([1.0, 1e-6])
    >>> d = nd.derivative(np.log, x, step=nd.steps.fixed([1e-6, 1e-12]))  # one per element
    >>> bool(np.allclose(d, 1 / x))
    True
    """

    h: Any  # a float, or a tuple of per-element steps (any array-like is converted)

    def __post_init__(self) -> None:
        h = self.h
        if isinstance(h, (int, float)) or isinstance(h, np.generic) and np.ndim(h) == 0:
            object.__setattr__(self, "h", positive_finite(
                float(h) if isinstance(h, np.generic) else h, "fixed(h)", "fixed(1e-6)"))
            return
        try:
            steps = np.asarray(to_host(h) if not isinstance(h, (list, tuple)) else h,
                               dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"fixed(h) must be a positive number or an array of positive "
                            f"per-element steps; got {type(h).__name__}. Example: "
                            "fixed(1e-6) or fixed(r.step).") from None
        if steps.size == 0 or not np.all(np.isfinite(steps) & (steps > 0)):
            raise ValueError("fixed(h) with per-element steps needs positive finite steps, "
                             "one per flat element of x; got "
                             f"{steps[:4].tolist()}{'...' if steps.size > 4 else ''}.")
        object.__setattr__(self, "h", tuple(steps.tolist()))

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        if not isinstance(self.h, tuple):
            return xp.full_like(abs_x, self.h)
        if len(self.h) != abs_x.shape[0]:
            raise ValueError(f"fixed(h) has {len(self.h)} per-element steps but this "
                             f"operation has {abs_x.shape[0]} step variables (one per flat "
                             "element of the differentiated input; jvp and hvp take one "
                             "step along their direction): pass one step per element or a "
                             "single number.")
        return xp.asarray(np.asarray(self.h), dtype=dtype, device=_device(abs_x))


@dataclass(frozen=True)
class relative(AbstractNominalRule):  # noqa: N801
    """``h_i = scale * max(|x_i|, typical)``: a step relative to the element's size.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([1e-3, 1.0, 1e3])
    >>> r = nd.derivative(np.log, x, step=nd.steps.relative(1e-6, typical=1e-3),
    ...                   full_output=True)
    >>> bool(np.max(np.abs(r.value - 1 / x) * x) < 1e-9)     # relative error
    True
    >>> bool(np.allclose(r.step, 1e-6 * x))     # the representable step (x + h) - x
    True
    """

    scale: float
    typical: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", positive_finite(self.scale, "relative(scale)",
                                                           "relative(1e-6)"))
        object.__setattr__(self, "typical", positive_finite(
            self.typical, "relative(typical=...)", "relative(1e-6, typical=1.0)"))

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        return scaled(at_least(xp, abs_x, self.typical), self.scale)


@dataclass(frozen=True)
class auto(AbstractNominalRule):  # noqa: N801
    """The default: the textbook optimal step for the stencil and the dtype.

    ``h_i = factor * c * eps(dtype) ** (1 / (p + q)) * max(|x_i|, typical)`` for a
    stencil of truncation order ``p`` and derivative order ``q``, which balances
    truncation error ``O(h**p)`` against round-off ``O(eps / h**q)``. ``c`` is the
    stencil's exact error-balancing constant ``Stencil.step_constant`` (``3**(1/3)``
    for central, ``2`` for forward differences). The complex step has no cancellation,
    and its truncation ``h**2 |f3| / 6`` (f3 the third derivative) stays below
    ``eps |f'|`` for ``h <= sqrt(eps) * scale``: the step is
    ``sqrt(eps) * max(|x_i|, typical)``, the largest that keeps machine precision, since
    f's own imaginary round-off is divided by ``h`` (a Kalman filter's made ``eps * |x|``
    steps 6% wrong on an ARIMA likelihood; statsmodels' own Hessian uses
    ``eps**(1/3)``). The complex-step Hessian takes central's first-derivative step
    ``c eps**(1/3) max(|x_i|, typical / 10)`` in both directions: its round-off grows
    like ``1/h`` only, so parameters far below 1 (a variance of 6.8e-5) are stepped on
    a tenth of ``typical``, as statsmodels' ``approx_hess_cs`` does.

    A Hessian's mixed entries take ``rho`` times these steps, where their own stencil
    balances (``rho = 1/2`` for central differences: ``3**(1/4)`` against ``48**(1/4)``;
    see :func:`numdiffx._core.plans.hessian.mixed_step_ratio`). The central Hessian
    (the default) measures first: its diagonal on ``x +- h e_i, x +- 2 h e_i`` (the
    five-point second derivative), whose fourth difference moves each mixed step to
    where it balances for f's actual curvature, within ``[h/16, 2 h]``
    (:mod:`numdiffx._core.strategies.measured`; ``2 n`` evaluations more).

    Derivatives of an order ``q`` above the stencil's order ``p``
    (``nd.derivative(f, x, method=nd.central(deriv=6))``: ``p = 2``) use the named
    stencil of the same family with order ``q`` (even for central):
    ``central(order=6, deriv=6)``. The order-2 stencil cannot get closer than
    ``eps**(1/4) = 1e-4`` there; order ``q`` reaches ``sqrt(eps)``.

    Parameters
    ----------
    typical : float
        Typical magnitude of the inputs; protects elements near zero.
    factor : float
        Multiplies the step; raise it for noisy functions.
    scale_with_x : bool
        ``True`` (default): the step grows with ``|x_i|`` (f varies on the scale of x).
        ``False``: ``h_i = factor * c * eps**(1/(p+q)) * typical`` for every element, for
        functions that vary on an absolute scale far from the origin, e.g. ``sin`` at
        ``x = 1e3`` (the relative step there costs 5 digits). Where ``x + h == x`` the
        element gets status STEP_TOO_SMALL.
    """

    typical: float = 1.0
    factor: float = 1.0
    scale_with_x: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "typical", positive_finite(self.typical, "auto(typical=...)",
                                                             "auto(typical=1.0)"))
        object.__setattr__(self, "factor", positive_finite(self.factor, "auto(factor=...)",
                                                            "auto(factor=10.0)"))
        if not isinstance(self.scale_with_x, bool):
            raise TypeError(f"auto(scale_with_x=...) must be True or False; got "
                            f"{self.scale_with_x!r}.")

    def scale_for(self, eps: float, method: AbstractMethod) -> float:
        """The relative step ``factor * c * eps**(1/(p+q))`` for ``method``."""
        if isinstance(method, ComplexStep):
            return self.factor * eps**0.5
        power = 1.0 / (method.order + method.deriv)
        return self.factor * method.step_constant * eps**power

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        eps = dtype_eps(xp, dtype)
        scale = self.scale_for(eps, method)
        typical = self.typical
        if method is COMPLEX_HESSIAN_STEP:
            typical = typical * COMPLEX_HESSIAN_FLOOR
        if not self.scale_with_x:
            return xp.full_like(abs_x, scale * typical)
        return scaled(at_least(xp, abs_x, typical), scale)

    def run(self, plan: Any, *, full_output: bool) -> Any:
        from .measured import applies, measured_hessian

        if applies(plan):  # the default central Hessian measures its diagonal first
            return measured_hessian(plan, self.steps(plan), full_output=full_output)
        raised = raised_order(plan.method) if plan.name == "elementwise" else None
        return super().run(plan if raised is None else plan.with_method(raised),
                           full_output=full_output)


def raised_order(method: AbstractMethod) -> Stencil | None:
    """The stencil of the same family whose order reaches the derivative order, for a
    named stencil whose order ``p`` is below its derivative order ``q``; else None.

    One step of an order-``p`` stencil for the ``q``-th derivative is at best
    ``eps**(p/(p+q))`` accurate: ``1e-4`` for ``central(deriv=6)``, ``6e-3`` for the
    10th derivative. Order ``q`` (rounded up to even for central) reaches
    ``sqrt(eps)``: numdifftools' test cases of orders 3 to 10 went from 80% to 95%
    passed (``asv_bench/compare/peer_test_suites_vs_numdiffx.py``)."""
    if not isinstance(method, Stencil) or method.family not in _FAMILIES:
        return None
    p, q = method.order, method.deriv
    if p >= q:
        return None
    return _FAMILIES[method.family](order=q + q % 2 if method.family == "central" else q,
                                    deriv=q)



_FAMILIES = {"central": central, "forward": forward, "backward": backward}

DEFAULT_AUTO = auto()
