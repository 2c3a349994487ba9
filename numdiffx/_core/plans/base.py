"""What a plan is: an operation described as data, run by any step rule that supports it.

A plan knows the *entries* of its operation (a Jacobian column, a Hessian entry, a
nonzero, a direction), the *step variables* their steps come from (input elements, or
one scalar step along a direction), how to evaluate the entries at given steps, and how
to lay the results out. Step rules (``strategies``) pick the steps and combine the
evaluations; they never know which operation they serve.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..evaluation.points import DEFAULT_MEMORY_BUDGET, Differences, representable_steps
from ..problem import Problem
from ..stencils import AbstractMethod, ComplexStep
from .outcome import Outcome

__all__ = ["AbstractPlan"]


class AbstractPlan:
    """Base of the plans. Abstract: concrete plans live in this package's modules.

    Attributes every plan sets: ``problem``, ``method`` (the operation's stencil),
    ``deriv`` (the derivative order the step rule sizes steps for), ``n_entries`` (E)
    and ``n_out`` (M, values per entry).
    """

    name: ClassVar[str]
    #: one scalar step along a direction (jvp): no per-element bounds or typical scales
    directional: ClassVar[bool] = False
    #: a two-sided stencil meeting NaN/inf on one side retries one-sided (ONE_SIDED)
    one_sided_retry: ClassVar[bool] = False
    #: entries of one direction: the evaluation can return extra functionals of their
    #: points (the error estimate's second difference); False for mixed stencils
    extras_ok: ClassVar[bool] = True
    #: the adaptive tableau may run on blocks of entries one after the other (entries
    #: are independent, and their levels' points too): memory bounded by the budget
    blocked_tableau: ClassVar[bool] = False

    problem: Problem
    method: AbstractMethod
    deriv: int
    n_entries: int
    n_out: int
    chunk_size: int | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    # -- steps ---------------------------------------------------------------------------
    def step_scale(self) -> Any:
        """(S,) magnitudes the step rule scales steps by: ``|x_i|`` per element."""
        return self.problem.xp.abs(self.problem.real_x)

    def step_x(self) -> Any:
        """(S,) the values the steps are added to (bounds, representability)."""
        return self.problem.real_x

    def step_method(self) -> AbstractMethod:
        """The stencil whose order (with ``deriv``) sizes the steps."""
        return self.method.with_deriv(self.deriv)

    def to_steps(self, h: Any) -> Any:
        """Nominal steps -> the steps used: ``(x + h) - x`` (complex step: as given)."""
        if isinstance(self.method, ComplexStep):
            return h  # an imaginary step is never lost to rounding of the real part
        return representable_steps(self.problem.xp, self.step_x(), h)

    def nominal_steps(self, nominal: Any) -> Any:
        """Steps of a one-step rule: ``nominal(scale, method)`` -> the steps used."""
        return self.to_steps(nominal(self.step_scale(), self.step_method()))

    def entry_variables(self) -> np.ndarray:
        """(E,) host: the step variable of each entry (its first, for a pair)."""
        return np.arange(self.n_entries)

    def entry_step(self, h: Any, rows: np.ndarray) -> Any:
        """(len(rows),) the step of each entry in ``rows``."""
        xp = self.problem.xp
        return xp.take(h, xp.asarray(self.entry_variables()[rows], device=self.problem.device),
                       axis=0)

    def estimate_steps(self, h: Any) -> Any:
        """(E, 1) the step of each entry for the error estimate of a one-step rule."""
        return self.problem.xp.expand_dims(self.entry_step(h, np.arange(self.n_entries)), 1)

    def output_scale(self, values: Any) -> Any:
        """(E|1, M) the magnitude absolute errors of an entry are judged against: the
        largest entry sharing its output (all entries of a Jacobian row)."""
        xp = self.problem.xp
        a = xp.abs(values)
        if not a.shape[0]:
            return a
        top = xp.max(a, axis=0, keepdims=True)  # NaN or inf where a row has one
        if self.problem.backend.is_traced(top) or not bool(xp.all(xp.isfinite(top))):
            finite = xp.where(xp.isfinite(a), a, xp.zeros_like(a))
            top = xp.max(finite, axis=0, keepdims=True)
        return top

    def blocks_output_scale(self, blocks: Sequence[Any]) -> Any:
        """(1, M) :meth:`output_scale` of blocks of entries taken together: the largest of
        each block's (a maximum: the same as over the joined entries). Base scale only."""
        xp = self.problem.xp
        scale = None
        for values in blocks:
            top = self.output_scale(values)
            scale = top if scale is None else xp.maximum(scale, top)
        return scale

    def judged_scale(self, values: Any, error: Any) -> Any:
        """:meth:`output_scale` once the error estimates are known (a plan may judge an
        entry that is zero within its estimate against a wider scale)."""
        return self.output_scale(values)

    def estimate_method(self) -> AbstractMethod:
        """The stencil whose error constants describe the entries' values."""
        return self.method

    def inherit(self, error: Any, status: Any) -> tuple[Any, Any]:
        """(error, status) after entries inherit the failures of entries they depend on
        (a Hessian's mixed entries those of its diagonal); as given for most plans."""
        return error, status

    def with_method(self, method: AbstractMethod) -> AbstractPlan:
        """This plan with another stencil of the same derivative order (a shallow copy:
        same problem, entries and layout)."""
        new = copy.copy(self)
        new.method = method
        return new

    def entry_methods(self, methods: list[AbstractMethod], group: np.ndarray
                      ) -> tuple[list[AbstractMethod], np.ndarray, list[float]]:
        """Per entry: the stencil it uses (methods indexed by a host group per entry) and
        each stencil's round-off weight ``sum |w|``. ``methods``/``group`` are per step
        variable (one-sided stencils near bounds)."""
        weights = [m.roundoff_constant for m in methods]
        return methods, group[self.entry_variables()], weights

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, h: Any, rows: np.ndarray | None = None, *,
                 method: AbstractMethod | None = None, offsets: list[float] | None = None,
                 extras: tuple[tuple[float, ...], ...] = ()) -> Differences:
        """Values (and statuses) of the entries ``rows`` (all when None) at steps ``h``,
        with ``method`` instead of the plan's own (a one-sided retry). With ``offsets``
        the raw per-offset differences (len(rows), k, M)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def level(self, h: Any, rows: np.ndarray, methods: list[AbstractMethod],
              entry_group: np.ndarray, nested: list[Any]) -> Differences:
        """One adaptive level: ``rows`` at steps ``h``, each with its group's stencil,
        reusing shared points through ``nested`` (one NestedPoints per method)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def f_scale(self) -> Any:
        """(E, M) magnitude of f whose round-off each entry's values carry."""
        raise NotImplementedError  # pragma: no cover - abstract

    def f0_entries(self) -> Any:
        """f(x) broadcastable to the entries' (E, M) layout."""
        return self.problem.xp.expand_dims(self.problem.f0, 0)

    # -- result --------------------------------------------------------------------------
    def compute(self, rule: Any, full_output: bool) -> Any:
        """Run ``rule`` on this plan and lay the outcome out (:meth:`finish`). Where f
        works in a 16-bit float its values were differenced in float32; the result goes
        back to f's dtype, its error estimate grown by that last rounding."""
        outcome = rule.run(self, full_output=full_output)
        narrow = self.problem.evaluator.narrow_dtype
        if narrow is not None:
            xp = self.problem.xp
            if outcome.error is not None:
                rounding = float(xp.finfo(narrow).eps) * xp.abs(outcome.value)
                outcome.error = xp.astype(outcome.error + rounding, narrow)
            outcome.value = xp.astype(outcome.value, narrow)
        return self.finish(outcome, full_output)

    def finish(self, outcome: Outcome, full_output: bool) -> Any:
        """The operation's result in its layout (or a DiffResult)."""
        raise NotImplementedError  # pragma: no cover - abstract
