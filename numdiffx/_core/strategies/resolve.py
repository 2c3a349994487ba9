"""The public ``step=`` argument as a rule: None/'auto' -> auto(), a number -> fixed."""

from __future__ import annotations

import math
import numbers

from .base import AbstractStepRule
from .nominal import DEFAULT_AUTO, fixed

__all__ = ["resolve_step"]


def resolve_step(step: object, name: str = "step") -> AbstractStepRule:
    """Map the public ``step=`` argument onto a rule: None/'auto' -> auto(), number -> fixed."""
    if step is None or (isinstance(step, str) and step == "auto"):
        return DEFAULT_AUTO
    if isinstance(step, AbstractStepRule):
        return step
    if isinstance(step, str):
        raise ValueError(f"{name}={step!r} is not known; use 'auto', a positive number (a fixed "
                         "step) or a rule such as nd.steps.relative(1e-6).")
    if isinstance(step, numbers.Real) and not isinstance(step, bool):
        value = float(step)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={step!r} must be a positive finite number (a fixed "
                             "step), 'auto' or a step rule; e.g. step=1e-6 or "
                             "step=nd.steps.auto().")
        return fixed(value)
    raise TypeError(f"{name} must be None, 'auto', a positive number or a step rule such as "
                    f"nd.steps.fixed(1e-6); got {type(step).__name__}.")
