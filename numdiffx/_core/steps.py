"""Step ("delta") rules: small frozen objects that give one step per input element.

Every rule is called as ``rule.nominal(abs_x, xp=..., dtype=..., method=m)`` -- ``m``
the stencil for the derivative order being computed -- and returns a positive step per
element of ``abs_x`` (same shape, namespace, dtype and device). The engine then
replaces each nominal step by the actually representable one, ``(x + h) - x``, and
flags elements where it is zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .stencils import AbstractMethod, ComplexStep

__all__ = ["AbstractStepRule", "auto", "fixed", "relative", "resolve_step"]


def _positive_finite(value: object, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive finite number; got "
                        f"{type(value).__name__}. Example: {example}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}. "
                         f"Example: {example}.")
    return float(value)


class AbstractStepRule:
    """Base of the step rules. Abstract: use ``fixed``, ``relative`` or ``auto``."""

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any,
                method: AbstractMethod) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class fixed(AbstractStepRule):  # noqa: N801 - public lower-case constructor, like optax
    """The same absolute step ``h`` for every element (JacrevFinite's ``delta``).

    A plain number passed as ``step=`` means ``fixed(step)``. Where ``x + h == x`` in
    the input's dtype the element gets NaN and status STEP_TOO_SMALL.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([1.0])
    >>> err = abs(nd.derivative(np.exp, x, step=nd.steps.fixed(1e-5))[0] - np.e)
    >>> bool(err < 1e-9)
    True
    """

    h: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "h", _positive_finite(self.h, "fixed(h)", "fixed(1e-6)"))

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        return xp.full_like(abs_x, self.h)


@dataclass(frozen=True)
class relative(AbstractStepRule):  # noqa: N801
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
        object.__setattr__(self, "scale", _positive_finite(self.scale, "relative(scale)",
                                                           "relative(1e-6)"))
        object.__setattr__(self, "typical", _positive_finite(
            self.typical, "relative(typical=...)", "relative(1e-6, typical=1.0)"))

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        return self.scale * xp.maximum(abs_x, xp.asarray(self.typical, dtype=abs_x.dtype))


@dataclass(frozen=True)
class auto(AbstractStepRule):  # noqa: N801
    """The default: the textbook optimal step for the stencil and the dtype.

    ``h_i = factor * c * eps(dtype) ** (1 / (p + q)) * max(|x_i|, typical)`` for a
    stencil of truncation order ``p`` and derivative order ``q``, which balances
    truncation error ``O(h**p)`` against round-off ``O(eps / h**q)``. ``c`` is the
    stencil's exact error-balancing constant ``Stencil.step_constant`` (``3**(1/3)``
    for central, ``2`` for forward differences). For the complex step there is no
    round-off term, so the step is ``eps * max(|x_i|, typical)``, far below the
    truncation threshold.

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
        object.__setattr__(self, "typical", _positive_finite(self.typical, "auto(typical=...)",
                                                             "auto(typical=1.0)"))
        object.__setattr__(self, "factor", _positive_finite(self.factor, "auto(factor=...)",
                                                            "auto(factor=10.0)"))
        if not isinstance(self.scale_with_x, bool):
            raise TypeError(f"auto(scale_with_x=...) must be True or False; got "
                            f"{self.scale_with_x!r}.")

    def scale_for(self, eps: float, method: AbstractMethod) -> float:
        """The relative step ``factor * c * eps**(1/(p+q))`` for ``method``."""
        if isinstance(method, ComplexStep):
            return self.factor * eps
        power = 1.0 / (method.order + method.deriv)
        return self.factor * method.step_constant * eps**power

    def nominal(self, abs_x: Any, *, xp: Any, dtype: Any, method: AbstractMethod) -> Any:
        eps = float(xp.finfo(dtype).eps)
        scale = self.scale_for(eps, method)
        if not self.scale_with_x:
            return xp.full_like(abs_x, scale * self.typical)
        return scale * xp.maximum(abs_x, xp.asarray(self.typical, dtype=abs_x.dtype))


def resolve_step(step: object) -> AbstractStepRule:
    """Map the public ``step=`` argument onto a rule: None/'auto' -> auto(), number -> fixed."""
    if step is None or (isinstance(step, str) and step == "auto"):
        return auto()
    if isinstance(step, AbstractStepRule):
        return step
    if isinstance(step, str):
        raise ValueError(f"step={step!r} is not known; use 'auto', a positive number (a fixed "
                         "step) or a rule such as nd.steps.relative(1e-6).")
    if isinstance(step, (int, float, np.floating, np.integer)) and not isinstance(
            step, (bool, np.bool_)):
        return fixed(float(step))
    raise TypeError("step must be None, 'auto', a positive number or a step rule such as "
                    f"nd.steps.fixed(1e-6); got {type(step).__name__}.")
