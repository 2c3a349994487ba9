"""The error-bound step: cheaper than adaptation, one pilot stencil per element.

``steps.bound()`` estimates ``M = |f^(p+q)|`` per step variable from one extra central
stencil and takes the step that minimises ``C_t M h**p + C_r eps_f / h**q``
(FiniteDifferences.jl's bound estimator; Stepleman & Winarsky 1979; Gill, Murray,
Saunders & Wright 1983).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import device as _device

from numdiffx.backends import to_host

from ..plans.outcome import Outcome
from ..stencils import AbstractMethod, Stencil, central
from .adaptive import _pow2
from .base import AbstractStepRule, positive_finite
from .diagnose import verdict

__all__ = ["bound"]


def xp_real(p: Any) -> bool:
    xp = p.xp
    return bool(xp.isdtype(p.x_flat.dtype, "real floating")
                and xp.isdtype(p.f0.dtype, "real floating"))


def _per_variable(plan: Any, a: Any) -> Any:
    """(S,) the largest value of (E, M) ``a`` over the entries of each step variable."""
    xp = plan.problem.xp
    top = xp.max(a, axis=1) if a.shape[1] else xp.zeros((a.shape[0],), dtype=a.dtype,
                                                         device=plan.problem.device)
    variables = plan.entry_variables()
    n = plan.problem.n
    if variables.shape[0] == n and np.array_equal(variables, np.arange(n)):
        return top
    host = np.zeros(n, dtype=np.float64)
    np.maximum.at(host, variables, to_host(top).astype(np.float64))
    return xp.asarray(host, dtype=a.dtype, device=plan.problem.device)


@dataclass(frozen=True)
class bound(AbstractStepRule):  # noqa: N801 - public lower-case constructor
    """Per-element step minimising the error bound ``C_t M h**p + C_r eps_f / h**q``.

    ``M = |f^(p+q)|`` is estimated per element from one extra central stencil of order
    2 for the ``(p+q)``-th derivative at step ``eps**(1/(p+q+2)) * max(|x_i|, typical)``
    (FiniteDifferences.jl's bound estimator, Stepleman & Winarsky 1979, Gill, Murray,
    Saunders & Wright 1983); ``eps_f = max(noise, eps) * |f(x)|``. The cost is
    ``p + q + 1`` extra evaluations per element (4 for central). With
    ``full_output=True`` the error is twice that bound. Supported by
    :func:`numdiffx.derivative`, :func:`numdiffx.jacobian` and :func:`numdiffx.gradient`
    (real stencils; a Jacobian uses one step per input, from the largest ``M`` and
    ``|f|`` over the outputs).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 1.0, 2.0])
    >>> d = nd.derivative(np.exp, x, step=nd.steps.bound())
    >>> bool(np.all(np.abs(d - np.exp(x)) <= 1e-10 * np.exp(x)))
    True
    """

    typical: float = 1.0
    scale_with_x: bool = True
    noise: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "typical", positive_finite(
            self.typical, "bound(typical=...)", "bound(typical=1.0)"))
        if self.noise is not None:
            object.__setattr__(self, "noise", positive_finite(
                self.noise, "bound(noise=...)", "bound(noise=1e-8)"))
        if not isinstance(self.scale_with_x, bool):
            raise TypeError(f"bound(scale_with_x=...) must be True or False; got "
                            f"{self.scale_with_x!r}.")

    def scale(self, abs_x: Any, *, xp: Any) -> Any:
        typ = xp.full_like(abs_x, self.typical)
        return typ if not self.scale_with_x else xp.maximum(abs_x, typ)

    supports = frozenset({"elementwise", "columns", "coloured"})

    def run(self, plan: Any, *, full_output: bool) -> Any:
        """A pilot stencil for ``|f^(p+q)|``, then the step minimising the bound."""
        p = plan.problem
        if not xp_real(p):
            raise ValueError("steps.bound() needs real floating inputs and a real-valued f; use "
                             "step='auto' for complex inputs or outputs.")
        xp, method = p.xp, plan.method
        pp, q, _, _, high = _bound_constants(method)
        eps = float(xp.finfo(p.dtype).eps)
        scale = plan.step_scale()
        big = plan.to_steps(_pow2(xp, eps ** (1.0 / (pp + q + 2)) * self.scale(scale, xp=xp)))
        pilot = plan.evaluate(big, method=high).values  # (E, M): |f^(p+q)| per entry
        m_abs = xp.abs(pilot)
        m_safe = xp.where(xp.isfinite(m_abs), m_abs, xp.zeros_like(m_abs))
        f_abs = xp.abs(plan.f0_entries())
        # one step per step variable, from the largest M and |f| of its entries
        m_var = _per_variable(plan, m_safe)
        f_var = _per_variable(plan, xp.broadcast_to(plan.f_scale(), m_safe.shape))
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # huge |f|
            h = plan.to_steps(_bound_steps(xp, scale, self, method, m_var, f_var))
        d = plan.evaluate(h)
        h_e = xp.expand_dims(plan.entry_step(h, np.arange(plan.n_entries)), 1)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            trunc, roundoff = _bound_error(xp, method, self, m_safe, f_abs,
                                           xp.where(h_e == 0, xp.ones_like(h_e), h_e))
            error = trunc + roundoff
        status = verdict(xp, method, p.eps, d.values, d.status, trunc, roundoff,
                         plan.output_scale(d.values))
        error = xp.where(d.status == 0, error, xp.asarray(math.nan, dtype=error.dtype,
                                                            device=p.device))
        return Outcome(d.values, error, xp.broadcast_to(h_e, d.values.shape), status,
                       per_entry_step=True)



def _bound_constants(method: AbstractMethod) -> tuple[int, int, float, float, Stencil]:
    if not isinstance(method, Stencil):
        raise ValueError("steps.bound() needs a real stencil (the complex step has no "
                         "round-off term to balance); use step='auto' with complex_step.")
    p, q = method.order, method.deriv
    return (p, q, method.roundoff_constant, method.truncation_constant,
            central(order=2, deriv=p + q))


def _bound_steps(xp: Any, x: Any, rule: bound, method: AbstractMethod, m_abs: Any,
                 f_abs: Any) -> Any:
    """Minimiser of the bound per element, clamped to [16 eps, 0.1] * scale."""
    p, q, c_r, c_t, _ = _bound_constants(method)
    eps = float(xp.finfo(x.dtype).eps)
    level = max(rule.noise or 0.0, eps)
    scale = rule.scale(xp.abs(x), xp=xp)
    tiny = xp.asarray(float(xp.finfo(x.dtype).smallest_normal), dtype=x.dtype,
                      device=_device(x))
    m_safe = xp.where(xp.isfinite(m_abs), m_abs, xp.zeros_like(m_abs))
    ratio = (q * c_r * level * f_abs + tiny) / (p * c_t * m_safe + tiny)
    h = ratio ** (1.0 / (p + q))
    hmax = 0.1 * scale
    hmin = 16.0 * eps * scale
    h = xp.minimum(xp.maximum(h, hmin), hmax)
    return _pow2(xp, h)


def _bound_error(xp: Any, method: AbstractMethod, rule: bound, m_abs: Any, f_abs: Any,
                 h: Any) -> tuple[Any, Any]:
    """(truncation, round-off) terms of the error bound, each doubled."""
    p, q, c_r, c_t, _ = _bound_constants(method)
    eps = float(xp.finfo(h.dtype).eps)
    level = max(rule.noise or 0.0, eps)
    return 2.0 * c_t * m_abs * h ** p, 2.0 * c_r * level * f_abs / h ** q


