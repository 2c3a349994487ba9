"""Step rules: ``nd.steps.fixed(1e-6)``, ``nd.steps.relative(1e-6)``, ``nd.steps.auto()``."""

from numdiffx._core.steps import AbstractStepRule as AbstractStepRule
from numdiffx._core.steps import auto as auto
from numdiffx._core.steps import fixed as fixed
from numdiffx._core.steps import relative as relative

__all__ = ["AbstractStepRule", "auto", "fixed", "relative"]
