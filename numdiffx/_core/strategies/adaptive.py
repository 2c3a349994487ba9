"""Adaptive steps: a geometric step sequence, Ridders extrapolation, honest error estimates.

``steps.adaptive(...)`` runs any plan but the Hessian-vector product: instead of one
step per element it evaluates *levels* ``h_k = h_0 / ratio**k`` (each level ONE call of
the plan, i.e. one batched evaluation of every still-active entry), extrapolates across
levels with Richardson's tableau (Ridders 1982, :mod:`.tableau`) and keeps, per output
element, the tableau entry with the smallest error estimate. Stencil points shared by
consecutive levels are reused (:class:`~numdiffx._core.plans.shared.NestedPoints`).
A dense Jacobian whose tableau would not fit ``memory_budget`` runs it, and the verify
pass (:mod:`.verify`), on blocks of columns one after the other (:func:`tableau_block`):
one call per level per block, memory bounded by the budget, the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import device as _device

from numdiffx.backends import to_host

from ..plans.outcome import Outcome
from ..result import Status
from ..stencils import AbstractMethod, ComplexStep, Stencil, backward, forward
from .base import AbstractStepRule, positive_finite
from .tableau import Level, extrapolate, join_blocks
from .verify import verify

__all__ = ["adaptive", "error_powers", "group_methods"]


@dataclass(frozen=True)
class adaptive(AbstractStepRule):  # noqa: N801 - public lower-case constructor
    """Per-element adaptive step with Ridders extrapolation and an error estimate.

    Supported by :func:`numdiffx.derivative`, :func:`numdiffx.jacobian`,
    :func:`numdiffx.gradient`, :func:`numdiffx.hessian` and :func:`numdiffx.jvp`.
    With ``full_output=True`` they return ``DiffResult(value, error, step, nfev,
    status)``: ``error`` is the estimate (true error <= estimate on >= 95% of the
    reference problems), ``step`` the step of the level the chosen estimate came from
    (value's shape) and ``status`` SUCCESS (the estimate is within the success
    tolerance: ``atol + rtol * |value|`` with the caller's ``rtol``, or what the
    stencil promises, ``100 eps**max(p/(p+q), 1/2)``, when ``rtol`` is None; see
    :meth:`final_status`), else why the tableau stopped: ROUNDOFF (round-off or noise
    of f limits the estimate), ERROR_INCREASED (the error grew; best value kept),
    MAX_ITERATIONS (the steps ran out; best value kept) or NON_FINITE (no finite
    estimate).

    Parameters
    ----------
    initial : float, optional
        First step ``h_0 = initial * max(|x_i|, typical_i)`` (``initial * typical_i``
        when ``scale_with_x=False``), rounded to a power of two. ``None`` picks it from
        the dtype, the stencil and the derivative order ``q``:
        ``min(1, 0.1 * g * (eps / eps_float64)**(1/9)) / reach`` with ``g = q`` for
        ``q >= 3`` (else 1), where ``reach`` is the stencil's largest offset (at least
        1): 0.1 for central first derivatives and Hessians in float64, 0.93 in float32,
        half that for ``central(order=4)``, 0.2 for ``central(deriv=10)`` (reach 5).
        The step where round-off meets the truncation of a high-order extrapolation
        grows with ``eps`` and with ``q`` (round-off grows like ``eps / h**q``), so a
        low-precision or high-order tableau must start further out to reach its best
        accuracy.
    ratio : float
        Step ratio between levels (> 1). 2 is exact in binary arithmetic.
    max_steps : int
        Most levels (each costs ``len(stencil)`` evaluations per active entry, fewer
        when the stencil's points nest: with ``ratio=2`` a level of ``central(order=4)``
        takes its +-2 points from the +-1 points of the level before).
    max_order : int
        Most extrapolation columns kept in the tableau.
    atol, rtol : float
        Stop an element once ``error <= atol + rtol * |value|`` (both >= 0; ``rtol=0``
        stops on ``atol`` alone). ``rtol=None`` means ``eps**0.75`` of the dtype
        (1.8e-12 in float64, 6.4e-6 in float32). The status is SUCCESS where the final
        estimate is within ``atol + rtol * |value|`` too; with ``rtol=None`` the
        stencil's promise (``100 sqrt(eps)``, 1.5e-6 in float64, for first and second
        derivatives; from the third derivative on ``eps**(1/4)``, 1.2e-4, or
        ``eps**(p/(p+q))`` for a stencil of order p where larger).
    noise : float, optional
        Relative noise level of f (e.g. 1e-8 for a simulation with 8 digits); without
        it, ``eps`` of the dtype. For a vector f (jacobian, jvp, hessian) the level is
        relative to ``max(|f_i|, max_j |f_j|)``: an output that is small by cancellation
        carries the round-off of the larger values it was computed from. Raises
        the round-off term of the estimate and the step floor
        ``noise**(1/(p+q)) * max(|x_i|, typical_i)`` below which no level is tried.
    bounds : (lo, hi), optional
        Domain of every input element: stencils never leave it. Elements whose central
        stencil would leave it switch to a one-sided stencil of the same order (or a
        smaller first step). Derivative, jacobian and gradient only.
    max_step : float, optional
        Upper limit of the first step.
    typical : float or sequence of float
        Typical magnitude of the inputs; a sequence gives one per flat input element.
    scale_with_x : bool
        Whether the first step grows with ``|x_i|``.
    safety : float
        Factor on the Ridders difference estimate (>= 1).
    verify : bool
        Check every value that converged at a step larger than the auto step against one
        central difference at the auto step (one more pass). Large steps can agree across
        levels on a staircase (floor at x = 9.5: slope 1 at h = 1 and 0.5) or across the
        kinks of a ReLU network; where the small-step value disagrees with the tableau's
        grossly (beyond ten times both estimates and ``sqrt(eps)`` of the derivative's
        scale), it replaces it, with its own estimate and status. Not with ``noise=``
        (the auto step lies below the noise floor).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 1.0, 2.0])
    >>> r = nd.derivative(np.exp, x, step=nd.steps.adaptive(), full_output=True)
    >>> err = np.abs(r.value - np.exp(x))
    >>> bool(np.all(err <= 1e-13 * np.exp(x))), bool(np.all(err <= r.error))
    (True, True)
    """

    initial: float | None = None
    ratio: float = 2.0
    max_steps: int = 15
    max_order: int = 6
    atol: float = 0.0
    rtol: float | None = None
    noise: float | None = None
    bounds: tuple[float, float] | None = None
    max_step: float | None = None
    typical: float | tuple[float, ...] = 1.0
    scale_with_x: bool = True
    safety: float = 2.0
    verify: bool = True

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.initial is not None:
            s(self, "initial", positive_finite(self.initial, "adaptive(initial=...)",
                                                "adaptive(initial=0.1)"))
        s(self, "ratio", positive_finite(self.ratio, "adaptive(ratio=...)",
                                          "adaptive(ratio=2.0)"))
        if self.ratio <= 1.0:
            raise ValueError(f"adaptive(ratio=...) must be > 1 (steps shrink by it); got "
                             f"{self.ratio!r}. Example: adaptive(ratio=2.0).")
        for name, least in (("max_steps", 2), ("max_order", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"adaptive({name}=...) must be an int; got {v!r}.")
            if v < least:
                raise ValueError(f"adaptive({name}=...) must be >= {least}; got {v}.")
        if isinstance(self.atol, bool) or not isinstance(self.atol, (int, float)) or not (
                math.isfinite(self.atol) and self.atol >= 0):
            raise ValueError(f"adaptive(atol=...) must be a finite number >= 0; got "
                             f"{self.atol!r}.")
        s(self, "atol", float(self.atol))
        if self.rtol is not None:
            if isinstance(self.rtol, bool) or not isinstance(self.rtol, (int, float)) or not (
                    math.isfinite(self.rtol) and self.rtol >= 0):
                raise ValueError(f"adaptive(rtol=...) must be None or a finite number >= 0; "
                                 f"got {self.rtol!r}. Example: adaptive(rtol=1e-10).")
            s(self, "rtol", float(self.rtol))
        if self.noise is not None:
            s(self, "noise", positive_finite(self.noise, "adaptive(noise=...)",
                                              "adaptive(noise=1e-8)"))
        if self.max_step is not None:
            s(self, "max_step", positive_finite(self.max_step, "adaptive(max_step=...)",
                                                 "adaptive(max_step=1e-3)"))
        if self.bounds is not None:
            b = self.bounds
            if not isinstance(b, (tuple, list)) or len(b) != 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in b):
                raise TypeError(f"adaptive(bounds=...) must be a pair (lo, hi) of numbers; got "
                                f"{b!r}. Example: adaptive(bounds=(0.0, float('inf'))).")
            lo, hi = float(b[0]), float(b[1])
            if math.isnan(lo) or math.isnan(hi) or not lo < hi:
                raise ValueError(f"adaptive(bounds=...) needs lo < hi; got {b!r}.")
            s(self, "bounds", (lo, hi))
        if isinstance(self.typical, (tuple, list)):
            s(self, "typical", tuple(positive_finite(t, "adaptive(typical=[...])",
                                                      "adaptive(typical=(1.0, 1e-3))")
                                     for t in self.typical))
        else:
            s(self, "typical", positive_finite(self.typical, "adaptive(typical=...)",
                                                "adaptive(typical=1.0)"))
        for flag in ("scale_with_x", "verify"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"adaptive({flag}=...) must be True or False; got "
                                f"{getattr(self, flag)!r}.")
        s(self, "safety", positive_finite(self.safety, "adaptive(safety=...)",
                                           "adaptive(safety=2.0)"))
        if self.safety < 1.0:
            raise ValueError(f"adaptive(safety=...) must be >= 1; got {self.safety!r}.")

    def scale(self, abs_x: Any, *, xp: Any) -> Any:
        """``max(|x_i|, typical_i)`` (or ``typical_i``), per element."""
        if isinstance(self.typical, tuple):
            if len(self.typical) != abs_x.shape[0]:
                raise ValueError(f"adaptive(typical=...) has {len(self.typical)} values but the "
                                 f"differentiated input has {abs_x.shape[0]} elements; give one "
                                 "per flat element or a single float.")
            typ = xp.asarray(np.asarray(self.typical), dtype=abs_x.dtype,
                             device=_device(abs_x))
        else:
            typ = xp.full_like(abs_x, self.typical)
        return typ if not self.scale_with_x else xp.maximum(abs_x, typ)

    def initial_for(self, dtype: Any, method: AbstractMethod, *, xp: Any,
                    deriv: int | None = None) -> float:
        """``initial``, or the default of the dtype, stencil and derivative order (the
        stencil's own when ``deriv`` is None) when it is None."""
        if self.initial is not None:
            return self.initial
        eps = float(xp.finfo(dtype).eps)
        q = method.deriv if deriv is None else deriv
        grow = (q if q >= 3 else 1) * (eps / float(np.finfo(np.float64).eps)) ** (1.0 / 9.0)
        return min(1.0, 0.1 * grow) / method.reach

    def first_step(self, abs_x: Any, method: AbstractMethod, *, xp: Any,
                   deriv: int | None = None) -> Any:
        """``h_0`` per element, rounded to a power of two (exact halving)."""
        h = self.initial_for(abs_x.dtype, method, xp=xp, deriv=deriv) * self.scale(abs_x,
                                                                                     xp=xp)
        if self.max_step is not None:
            h = xp.minimum(h, xp.asarray(self.max_step, dtype=h.dtype, device=_device(h)))
        return _pow2(xp, h)

    def tolerances(self, eps: float) -> tuple[float, float]:
        return self.atol, (eps ** 0.75 if self.rtol is None else self.rtol)

    supports = frozenset({"elementwise", "columns", "coloured", "hessian", "directional"})

    def run(self, plan: Any, *, full_output: bool) -> Any:
        """Levels of the plan, extrapolated per (entry, output); a Jacobian column that
        came back NaN (f undefined on one side of x at every level) once more with the
        forward, then the backward stencil (status ONE_SIDED where that succeeds)."""
        out = self._run(plan, full_output=full_output)
        p = plan.problem
        if (self.bounds is not None or plan.name != "columns" or p.backend.is_traced(out.value)
                or not p.xp.isdtype(p.x_flat.dtype, "real floating")):
            return out
        xp = p.xp
        x = plan.step_x()
        for side in (+1, -1):
            bad = xp.any(out.status == int(Status.NON_FINITE), axis=1) & xp.isfinite(x)
            if not bool(xp.any(bad)):
                break
            inf = xp.full_like(x, math.inf)
            edge = xp.where(bad, x, inf if side < 0 else -inf)
            sides = (edge, inf) if side > 0 else (-inf, edge)
            again = self._run(plan, full_output=full_output, sides=sides)
            take = xp.expand_dims(bad, 1) & (again.status != int(Status.NON_FINITE))
            ok = again.status == int(Status.SUCCESS)
            one_sided = xp.where(ok, xp.asarray(int(Status.ONE_SIDED), dtype=xp.int8,
                                                device=p.device), again.status)
            out.value = xp.where(take, again.value, out.value)
            out.error = xp.where(take, again.error, out.error)
            out.step = xp.where(take, again.step, out.step)
            out.status = xp.where(take, one_sided, out.status)
            # the rest of each row is judged again against the row's now finite scale
            out.status = self.final_status(plan, plan.estimate_method(), out.value,
                                           out.error, out.status)
            out.error, out.status = self.stationary(plan, plan.estimate_method(), out.value,
                                                    out.error, out.status)
        return out

    def _run(self, plan: Any, *, full_output: bool, sides: tuple[Any, Any] | None = None
             ) -> Any:
        from ..plans.shared import NestedPoints

        p = plan.problem
        cplx = _complex_problem(p, self)
        method = plan.method
        if plan.directional and (self.bounds is not None or isinstance(self.typical, tuple)):
            raise ValueError("adaptive(bounds=...) and per-element typical=(...) apply to basis "
                             "directions; use nd.jacobian(...) @ v for a restricted domain.")
        if plan.name == "hessian" and self.bounds is not None:
            raise ValueError("an adaptive hessian takes no bounds=: its mixed stencils move "
                             "two elements at once; use step='auto' near a bound.")
        xp, dtype, device = p.xp, p.dtype, p.device
        if cplx:  # the tableau runs on the real and imaginary parts as separate outputs
            dtype = xp.float32 if dtype in (xp.float32, xp.complex64) else xp.float64
        traced = p.backend.is_traced(p.x_flat)
        if traced and self.bounds is not None:
            raise ValueError("adaptive(bounds=...) chooses each element's stencil from x's "
                             "values, which jax.jit does not know while tracing: call it "
                             "outside jit, or drop bounds= inside it.")
        scale = plan.step_scale()
        h0 = self.first_step(scale, method, xp=xp, deriv=plan.deriv)
        x_vars = plan.step_x()
        methods, group, h0 = group_methods(method, self, x_vars if x_vars is not None else scale,
                                           h0, xp, sides)
        eps = float(xp.finfo(dtype).eps)
        level = max(self.noise or 0.0, eps)
        if self.noise is not None:
            floor = self.noise ** (1.0 / (method.order + method.deriv)) * self.scale(scale, xp=xp)
            if plan.directional:
                floor = plan.to_steps(floor)
        else:
            floor = xp.zeros_like(scale)
        entry_methods, entry_group, weights = plan.entry_methods(methods, group)
        w = xp.asarray(np.asarray(weights, dtype=np.float64)[entry_group], dtype=dtype,
                       device=device)
        # (E, 1) and (1, M): the tableau multiplies them per block of entries (a dense
        # Jacobian's full (E, M) product would be one more pass over its size)
        f_row = plan.f_scale()
        roundoff = (level * xp.expand_dims(w, 1),
                    xp.concat([f_row, f_row], axis=1) if cplx else f_row)
        variables = xp.asarray(plan.entry_variables(), device=device)
        floor_e = xp.take(floor, variables, axis=0)
        # reusing shared points decides on the host which rows halved exactly: not traced
        nested = [NestedPoints(m, self.ratio if not traced else 0.0, xp)
                  for m in entry_methods]

        def level_fn(k: int, rows: np.ndarray) -> Level:
            hk = plan.to_steps(h0 / self.ratio ** k)
            d = plan.level(hk, rows, entry_methods, entry_group, nested)
            values, ok = d.values, d.status == int(Status.SUCCESS)
            if cplx:
                values = xp.concat([xp.real(values), xp.imag(values)], axis=1)
                ok = xp.concat([ok, ok], axis=1)
            return Level(values, ok, plan.entry_step(hk, rows))

        block = tableau_block(plan, self, dtype, cplx)
        parts = extrapolate(
            xp, level_fn, n_entries=plan.n_entries, n_out=plan.n_out * (2 if cplx else 1),
            dtype=dtype,
            device=device, rule=self,
            factors=entry_factors(entry_methods, entry_group, self, xp, dtype, device),
            roundoff=roundoff, floor=floor_e, deriv=plan.deriv,
            gate=growth_gate(eps, plan.estimate_method()), traced=traced,
            chunk_entries=block, join=False)
        del roundoff  # (E, M): not needed past the tableau
        # no estimate below the smallest normal float: levels that agree exactly at a
        # subnormal x (x**3 at 1.2e-314 is 0.0 at every step) do not make 0.0 exact
        tiny = xp.asarray(float(xp.finfo(dtype).smallest_normal), dtype=dtype, device=device)
        for i, part in enumerate(parts):  # (block by block: see tableau_block)
            value, error, step, stop = (_recombine(xp, plan.n_out, *part) if cplx else part)
            if traced or bool(xp.any(error < tiny)):
                error = xp.where(error < tiny, tiny, error)
            parts[i] = (value, error, step, stop)
        method_e = plan.estimate_method()
        rejudged: list[bool] | None = None if traced else []
        if self.verify and self.noise is None and not cplx:  # (below the noise floor a check
            # means nothing; a complex f's check would need the split too)
            # near bounds (one-sided stencils) the central check could leave the domain
            skip = group != 0 if (self.bounds is not None or sides is not None) else None
            parts = verify(plan, method_e, parts, skip, block)
        if len(parts) > 1 and _row_scaled(plan):
            # blocks of entries: each judged where it is (small arrays), against the
            # largest value of each output over all blocks, then joined
            scale = plan.blocks_output_scale([part[0] for part in parts])
            parts = [(v, e, st, self.final_status(plan, method_e, v, e, why, scale=scale,
                                                  rejudged=rejudged))
                     for v, e, st, why in parts]
            value, error, step, status = join_blocks(xp, parts)
        else:
            value, error, step, stop = join_blocks(xp, parts)
            status = self.final_status(plan, method_e, value, error, stop,
                                       rejudged=rejudged if _row_scaled(plan) else None)
        if not cplx and (not rejudged or any(rejudged)):  # (none found above: no need)
            # a stationary point or a symmetric kink (stationary.py)
            error, status = self.stationary(plan, method_e, value, error, status)
        # a Hessian's mixed entry is no better than its diagonals (their failure, a step
        # the mixed points straddle too, left (10, 18) of a 21-parameter GLM at 0.0 with
        # a 1e-20 estimate while the true entry is -1.9e9)
        error, status = plan.inherit(error, status)
        return Outcome(value, error, step, status, per_entry_step=True)

    def check_point(self, x_flat: Any, names: tuple[str, ...], backend: Any) -> None:
        """With ``bounds``, x itself must lie inside them: f is never evaluated outside."""
        if self.bounds is None or backend.is_traced(x_flat):
            return
        lo, hi = self.bounds
        x = to_host(x_flat)
        if np.iscomplexobj(x):
            return  # refused later with the message for complex inputs
        outside = np.flatnonzero(~((x >= lo) & (x <= hi)))
        if outside.size:
            i = int(outside[0])
            raise ValueError(
                f"adaptive(bounds=({lo}, {hi})): x lies outside the bounds at {outside.size} "
                f"flat element(s) of {', '.join(names)}, e.g. element {i} = {x[i]!r}. f is "
                "never evaluated outside bounds=: move x inside them or widen bounds=.")

    def success_tolerances(self, eps: float, method: AbstractMethod) -> tuple[float, float]:
        """(atol, rtol) of SUCCESS: the caller's, or what the stencil promises at its
        optimal step (as for one-step rules) when ``rtol`` is None. The default stopping
        tolerance (``eps**0.75``) is tighter: the tableau refines past the promise.
        Derivatives of order 3 and above: ``eps**(1/4)`` at least."""
        from .diagnose import LOOSEST, PROMISE, tolerance

        if self.rtol is not None:
            return self.atol, self.rtol
        # never tighter than 100 sqrt(eps) (1.5e-6 in float64): the tableau extrapolates
        # every stencil past its one-step promise, and its estimate is an upper bound from
        # the levels' differences, not the stencil's eps**(p/(p+q)) (100 eps for the
        # complex step, 3.7e-9 for forward(order=4) Hessians: 51 numdifftools results
        # accurate to 1e-9 were called ROUNDOFF with estimates of 1e-8)
        t = max(tolerance(eps, method), min(LOOSEST, PROMISE * math.sqrt(eps)))
        if isinstance(method, Stencil) and method.deriv >= 3:
            # a derivative of order q >= 3 meets round-off at eps**(p/(p+q)) even after
            # extrapolation, and the tableau's estimate of it is an upper bound some
            # 10-100x above the error: 1.5e-6 called 4th to 10th derivatives accurate to
            # 1e-7 failures. SUCCESS there means eps**(1/4) (1.2e-4 in float64), or the
            # stencil's eps**(p/(p+q)) where larger (7e-4 for central 8th derivatives)
            t = max(t, eps ** 0.25, eps ** (method.order / (method.order + method.deriv)))
        return self.atol, t

    def final_status(self, plan: Any, method: AbstractMethod, value: Any, error: Any,
                     stop: Any, *, scale: Any = None, rejudged: list[bool] | None = None
                     ) -> Any:
        """SUCCESS where the estimate is within the success tolerance (judged, like one-step
        rules, against the value, its output row and atol); elsewhere why it stopped.
        ``scale``: the plan's judged scale, computed by a caller that judges blocks of
        entries (the largest value of each output over all of them). ``rejudged`` gets
        whether any entry is a candidate of :meth:`stationary`'s test (the same arithmetic
        on the arrays at hand; for plans judged by their output scale, :func:`_row_scaled`)."""
        xp = plan.problem.xp
        atol, rtol = self.success_tolerances(plan.problem.eps, method)
        with np.errstate(all="ignore"):
            mag = xp.abs(value)  # (real for a complex f)
            tiny = float(xp.finfo(error.dtype).smallest_normal)  # (the estimates' floor)
            if scale is None:
                scale = plan.judged_scale(mag, error)
            within = rtol * (mag + scale)
            if atol != 0.0:  # (0.0 + within is within: |value| + scale >= 0)
                within = atol + within
            tol = xp.maximum(within, xp.asarray(tiny, dtype=error.dtype,
                                                device=plan.problem.device))
            stops = ((stop == int(Status.SUCCESS)) | (stop == int(Status.ROUNDOFF))
                     | (stop == int(Status.ERROR_INCREASED))
                     | (stop == int(Status.MAX_ITERATIONS)))
            ok = (error <= tol) & stops
            if rejudged is not None:  # (the final status stops where ``stop`` does)
                out = stops & ~(error <= within)
                rejudged.append(bool(xp.any(out)) and bool(xp.any(out & xp.isfinite(value))))
        return xp.where(ok, xp.asarray(int(Status.SUCCESS), dtype=xp.int8,
                                       device=plan.problem.device), stop)


    def stationary(self, plan: Any, method: AbstractMethod, value: Any, error: Any,
                   status: Any) -> tuple[Any, Any]:
        """(error, status) of first derivatives at a stationary point or a symmetric kink,
        judged once more with f's curvature measured at the auto step
        (:mod:`.stationary`); unchanged where the estimate is within the tolerance of
        ``|value|`` and its output alone, under ``noise=``, under ``bounds=`` (the probe's
        central points at the auto step and twice it could leave the domain) and for other
        plans."""
        from .stationary import applies, probe_steps, rejudge_tableau

        if self.noise is not None or self.bounds is not None or not applies(plan):
            return error, status
        atol, rtol = self.success_tolerances(plan.problem.eps, method)
        return rejudge_tableau(plan, probe_steps(plan, self), value, error, status, atol,
                               rtol)


def _row_scaled(plan: Any) -> bool:
    """Whether the plan judges an entry against the largest value of its output over the
    entries (the base plan's scale: a maximum, which blocks can take one by one)."""
    from ..plans.base import AbstractPlan

    return (type(plan).judged_scale is AbstractPlan.judged_scale
            and type(plan).output_scale is AbstractPlan.output_scale)


def growth_gate(eps: float, method: AbstractMethod) -> float:
    """Relative accuracy a tableau must have reached before a growing estimate stops it
    (ERROR_INCREASED): ``eps**min(p/(p+q), 1/2)``, what the stencil could reach in one
    step. ``sqrt(eps)`` for first derivatives and Hessians; looser for higher
    derivatives, whose tableau meets round-off well above ``sqrt(eps)`` (the 5th
    derivative of cos at pi/2: -1 to 3e-8, then the levels diverge)."""
    if isinstance(method, ComplexStep):
        return math.sqrt(eps)
    p, q = method.order, method.deriv
    return eps ** min(p / (p + q), 0.5)


def tableau_block(plan: Any, rule: adaptive, dtype: Any, cplx: bool) -> int | None:
    """Entries per block of the tableau under the plan's ``memory_budget`` (None: one
    block). Per element the tableau holds about 20 arrays and two of its rows. (Smaller,
    cache-sized blocks cut numpy's time at n = 3000 by 10-20% but doubled torch's: per-call
    and per-operation overheads grow with the number of blocks.)"""
    if not plan.blocked_tableau:
        return None
    from ..evaluation.points import itemsize

    per_element = (20 + 2 * (rule.max_order + 1)) * itemsize(plan.problem.xp, dtype)
    per_entry = per_element * plan.n_out * (2 if cplx else 1)
    return max(1, plan.memory_budget // max(per_entry, 1))


def _pow2(xp: Any, h: Any) -> Any:
    return xp.pow(xp.asarray(2.0, dtype=h.dtype, device=_device(h)), xp.round(xp.log2(h)))


def error_powers(method: AbstractMethod, count: int) -> list[int]:
    """Exponents of the truncation-error series: p, p+2, ... (symmetric) or p, p+1, ..."""
    p = method.order
    if isinstance(method, ComplexStep):
        return [p + 2 * j for j in range(count)]
    assert isinstance(method, Stencil)
    offs = sorted(method.offsets)
    symmetric = offs == sorted(-o for o in offs)
    return [p + (2 if symmetric else 1) * j for j in range(count)]


def one_sided(method: AbstractMethod, side: int) -> Stencil:
    """Forward (side=+1) or backward (-1) stencil of the same derivative and order."""
    return (forward if side > 0 else backward)(order=method.order, deriv=method.deriv)


def offset_span(method: AbstractMethod) -> tuple[float, float]:
    if isinstance(method, ComplexStep):
        return 0.0, 0.0
    assert isinstance(method, Stencil)
    return float(min(method.offsets)), float(max(method.offsets))


def group_methods(method: AbstractMethod, rule: adaptive, x: Any, h0: Any, xp: Any,
                  sides: tuple[Any, Any] | None = None
                  ) -> tuple[list[AbstractMethod], np.ndarray, Any]:
    """Per element: which stencil (0 the given one, 1 forward, 2 backward) and h_0.

    Without bounds every element uses ``method``. With bounds, an element whose stencil
    would leave ``[lo, hi]`` at its first step switches to the one-sided stencil of the
    side with more room; its first step shrinks until that stencil fits. ``sides``:
    per-element ``(lo, hi)`` arrays instead of ``rule.bounds``.
    """
    methods: list[AbstractMethod] = [method]
    n = x.shape[0]
    bounds = rule.bounds if sides is None else sides  # (per-element arrays: a retry)
    if bounds is None or isinstance(method, ComplexStep):
        return methods, np.zeros(n, dtype=np.int64), h0
    lo, hi = bounds
    methods = [method, one_sided(method, +1), one_sided(method, -1)]
    spans = [offset_span(m) for m in methods]
    omin, omax = spans[0]
    fits = (x + omin * h0 >= lo) & (x + omax * h0 <= hi)
    room_up = hi - x
    room_down = x - lo
    use_fwd = ~fits & (room_up >= room_down)
    dev = _device(x)
    group = xp.where(fits, xp.asarray(0, dtype=xp.int64, device=dev),
                     xp.where(use_fwd, xp.asarray(1, dtype=xp.int64, device=dev),
                              xp.asarray(2, dtype=xp.int64, device=dev)))
    # shrink the one-sided first step to fit its side; near a bound f usually varies on
    # the scale of the distance to it (log near 0), so start at `initial` times that
    fmax = spans[1][1]
    bmin = -spans[2][0]
    frac = rule.initial_for(x.dtype, method, xp=xp)
    # (x on a bound itself: no distance to scale by, only the room on the other side)
    near_lo = xp.where(room_down > 0, frac * room_down, h0)
    near_hi = xp.where(room_up > 0, frac * room_up, h0)
    h_f = xp.minimum(h0, xp.minimum(room_up / fmax, near_lo))
    h_b = xp.minimum(h0, xp.minimum(room_down / bmin, near_hi))
    h0 = xp.where(fits, h0, xp.where(use_fwd, h_f, h_b))
    # rounding the step down to a power of two keeps it inside
    h0 = xp.pow(xp.asarray(2.0, dtype=h0.dtype, device=dev), xp.floor(xp.log2(h0)))
    return methods, to_host(group).astype(np.int64), h0


def entry_factors(methods: Sequence[AbstractMethod], group: np.ndarray, rule: adaptive,
                  xp: Any, dtype: Any, device: Any) -> Any:
    """(E, max_order) array of ``ratio**power_j`` per entry; (1, max_order) where every
    entry uses the same stencil (the tableau broadcasts it)."""
    table = np.array([[rule.ratio ** p for p in error_powers(m, rule.max_order)]
                      for m in methods], dtype=np.float64)
    uniform = group.shape[0] > 0 and bool((group == group[0]).all())
    return xp.asarray(table[group[:1]] if uniform else table[group], dtype=dtype,
                      device=device)


def _complex_problem(prob: Any, rule: Any) -> bool:
    """Whether x or f(x) is complex: then the tableau runs on the real and imaginary parts
    of f as separate outputs (a complex x is moved along the real axis, as the one-step
    rules do: ``df/dz`` for a holomorphic f)."""
    xp = prob.xp
    cplx = (xp.isdtype(prob.x_flat.dtype, "complex floating")
            or xp.isdtype(prob.f0.dtype, "complex floating"))
    if cplx and rule.bounds is not None:
        raise ValueError("steps.adaptive(bounds=...) needs real inputs and a real-valued f; "
                         "drop bounds= for complex inputs or outputs.")
    return cplx


def _recombine(xp: Any, m: int, value: Any, error: Any, step: Any, stop: Any
               ) -> tuple[Any, Any, Any, Any]:
    """The complex (E, M) result from the tableau's (E, 2M) real and imaginary parts:
    error ``hypot``, the worse status, the real part's step."""
    from ..holomorphic import complex_of

    cdt = complex_of(xp, value.dtype)
    unit = xp.asarray(1j, dtype=cdt, device=_device(value))
    joined = xp.astype(value[:, :m], cdt) + unit * xp.astype(value[:, m:], cdt)
    err = xp.sqrt(error[:, :m] ** 2 + error[:, m:] ** 2)
    worse = xp.where(stop[:, :m] != int(Status.SUCCESS), stop[:, :m], stop[:, m:])
    return joined, err, step[:, :m], worse
