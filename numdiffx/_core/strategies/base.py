"""What a step rule is: a small frozen object that runs any plan it declares support for.

A rule picks the steps of a plan's step variables, asks the plan to evaluate its entries
and combines what comes back into an :class:`~numdiffx._core.plans.base.Outcome`
(value, error estimate, step, status). It never knows which operation it serves. Adding
a rule is one new module (a frozen dataclass subclassing :class:`AbstractStepRule` with
``supports`` and ``run``) plus its export in ``numdiffx.steps``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..stencils import AbstractMethod

__all__ = ["ALL_PLANS", "AbstractStepRule", "positive_finite"]

#: The plan kinds (``plans.*.name``): which operations a rule can serve.
ALL_PLANS = frozenset({"elementwise", "columns", "coloured", "hessian", "directional", "hvp"})

_OPERATION_PLANS = {"derivative": "elementwise", "jacobian": "columns", "gradient": "columns",
                    "sparse jacobian": "coloured", "hessian": "hessian", "jvp": "directional",
                    "hvp": "hvp", "hessian_from_gradient": "columns",
                    "hvp_from_gradient": "directional"}
#: how the internal operation keys read in a message
_OPERATION_WORDS = {"hessian_from_gradient": "hessian with grad=",
                    "hvp_from_gradient": "hvp with grad="}


def positive_finite(value: object, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive finite number; got "
                        f"{type(value).__name__}. Example: {example}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}. "
                         f"Example: {example}.")
    return float(value)


class AbstractStepRule:
    """Base of the step rules. Abstract: use ``nd.steps.fixed``, ``relative``, ``auto``,
    ``bound`` or ``adaptive``.

    ``supports`` names the plans the rule can run; :meth:`check_supports` refuses the
    others before f is ever called; :meth:`run` executes a plan.
    """

    supports: ClassVar[frozenset[str]] = ALL_PLANS

    def check_supports(self, operation: str, method: AbstractMethod) -> None:
        plan = _OPERATION_PLANS.get(operation, operation)
        if plan not in self.supports:
            ok = sorted(op for op, p in _OPERATION_PLANS.items() if p in self.supports
                        and "_" not in op)
            listed = ", ".join(ok[:-1]) + f" and {ok[-1]}" if len(ok) > 1 else ok[0]
            words = _OPERATION_WORDS.get(operation, operation)
            raise ValueError(f"steps.{type(self).__name__}() is supported by {listed}; not by "
                             f"{words} (refused before f is called): for {words} use "
                             "step='auto', a number, or another rule of nd.steps.")

    def check_point(self, x_flat: Any, names: tuple[str, ...], backend: Any) -> None:
        """Refuse, before f is called, a point the rule cannot work at (default: any)."""

    def run(self, plan: Any, *, full_output: bool) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError
