"""Step rules: ``nd.steps.fixed(1e-6)``, ``nd.steps.relative(1e-6)``, ``nd.steps.auto()``,
``nd.steps.adaptive()`` (Ridders extrapolation with an error estimate),
``nd.steps.bound()`` (per-element step from an estimated error bound),
``nd.steps.fitted()`` (per-variable steps fitted to f's curvature and noise by a pilot)."""

from numdiffx._core.strategies.adaptive import adaptive as adaptive
from numdiffx._core.strategies.base import AbstractStepRule as AbstractStepRule
from numdiffx._core.strategies.bound import bound as bound
from numdiffx._core.strategies.fitted import fitted as fitted
from numdiffx._core.strategies.nominal import auto as auto
from numdiffx._core.strategies.nominal import fixed as fixed
from numdiffx._core.strategies.nominal import relative as relative

__all__ = ["AbstractStepRule", "adaptive", "auto", "bound", "fitted", "fixed", "relative"]
