"""Why a comparison failed, in words: the likely cause of one mismatching block.

Each cause is tested with a few extra evaluations of f (never of the analytical side,
except to see whether a callable reference is itself noisy), from the cheapest and most
specific to the general "the analytical derivative is wrong".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numdiffx._core.result import Status
from numdiffx._core.stencils import AbstractMethod
from numdiffx._core.strategies.nominal import auto

from ._compare import Mismatch
from ._numerical import _device_array
from ._problem import OutputsOf, Problem, Slot, real_view, real_view_host

__all__ = ["diagnose"]


def _probe(p: Problem, outputs: Sequence[Slot], slot: Slot, j: int,
           deltas: Sequence[float]) -> list[np.ndarray]:
    """The checked outputs (real view) with element j of ``slot`` moved by each delta."""
    g = OutputsOf(p, [slot.index], outputs)
    base = real_view_host(p.args[slot.index])
    like = real_view(p.args[slot.index])
    result = []
    for d in deltas:
        moved = base.copy()
        moved[j] += d
        result.append(np.asarray(_host(g(_device_array(moved, like))), dtype=np.float64))
    return result


def _host(x: Any) -> np.ndarray:
    from numdiffx.backends.autodiff import to_host

    return to_host(x)


def _rows(outputs: Sequence[Slot], out: Slot) -> slice:
    start = 0
    for s in outputs:
        if s.index == out.index:
            return slice(start, start + s.size)
        start += s.size
    raise KeyError(out.index)  # pragma: no cover - the mismatch names a checked output


def diagnose(p: Problem, mm: Mismatch, outputs: Sequence[Slot], method: AbstractMethod,
             analytical_name: str, reference: object = None,
             others: Sequence[Mismatch] = ()) -> str:
    """The likely cause of the worst element of ``mm``, one sentence with the fix."""
    m, j = mm.worst()
    out, inp = mm.out, mm.inp
    n_val, a_all = mm.numerical, mm.analytical_values
    a_val = a_all[m, j]
    x = real_view_host(p.args[inp.index])
    x_j = float(x[j]) if x.size > j else 0.0
    h = float(mm.steps[j]) if mm.steps.size > j else 0.0
    f0 = p.f0.get(out.index, np.zeros(out.size))
    el_out, el_in = out.element(m), inp.element(j)

    if not np.isfinite(f0[m]):
        return (f"f is not finite at x: {el_out} = {f0[m]} at the checked point, so it has no "
                "derivative there (and a NaN/inf matches nothing). Check f at these inputs "
                "(a log/sqrt/division outside its domain, an overflow) or move the point.")
    if np.isinf(x_j):
        return (f"{analytical_name} is wrong at an infinite input: {el_in} is {x_j:g}, which "
                "is not moved (x + h == x there), so f does not change and the numerical "
                f"derivative is 0; {el_out} = {f0[m]:.6g} is finite there, so a right rule has "
                f"a zero derivative too (the limit of a bounded f), not {a_val:.6g}. Check "
                f"{analytical_name}'s formula at +-inf (inf/inf, 0 * inf inside it).")
    status = mm.status
    if status is not None and status.size and (
            status[m, j] == int(Status.STEP_TOO_SMALL) or h == 0.0):
        spacing = float(np.spacing(np.array(x_j, dtype=np.float32 if inp.eps > 1e-10
                                            else np.float64)))
        return (f"step below the input's resolution: {el_in} is {x_j:.6g} in {inp.dtype}, where "
                f"representable numbers are {spacing:.3g} apart, so x + h == x (status "
                f"STEP_TOO_SMALL). Use eps=None (numdiffx's auto step) or a step of at least "
                f"{2 * spacing:.3g}.")
    if not np.isfinite(n_val[m, j]):
        return (f"f is not finite near x: {el_out} is finite at x but NaN/inf at x +- h along "
                f"{el_in} (h = {h:.3g}): a domain edge (sqrt/log near 0, a pole) lies within "
                "the step. Move the point away from the edge or pass a smaller eps.")
    if not np.isfinite(a_val):
        return (f"{analytical_name} is not finite: it gives {a_val} for {el_out} / {el_in} "
                "while f is finite and smooth there (0 * inf or a division by zero inside "
                "the backward formula).")

    col_n = n_val[:, j]
    col_a = a_all[:, j]
    if np.all(col_n == 0) and np.any(col_a != 0):
        return _all_zero_column(p, outputs, mm, m, j, h, x_j, analytical_name)

    noisy = _nondeterministic(p, outputs)
    if noisy:
        return noisy
    rows = _rows(outputs, out)
    if h:
        plus, minus = _probe(p, outputs, inp, j, [h, -h])
        center = real_view_host_at(p, outputs, inp)
        fwd = (plus[rows][m] - center[rows][m]) / h
        bwd = (center[rows][m] - minus[rows][m]) / h
        size = max(abs(fwd), abs(bwd))
        if abs(fwd - bwd) > 0.1 * size + 10 * (mm.atol + mm.error[m, j]):
            return (f"a kink or jump inside the step: at {el_in} = {x_j:.6g} the forward "
                    f"difference {fwd:.6g} and the backward one {bwd:.6g} disagree (h = "
                    f"{h:.3g}): f is not differentiable within [x - h, x + h] (relu/abs/max at "
                    "a tie, a branch, rounding, a ±1 label). Move the check point away from "
                    "it; the analytical value at a kink is a convention, not a derivative.")
    if mm.analytical is None or np.all(col_a == 0):
        if mm.analytical is None:
            return (f"the analytical derivative is None: autodiff found no path from {inp.name} "
                    f"to {out.name}, yet f changes with it (numerical up to "
                    f"{float(np.max(np.abs(n_val))):.6g}): the output was detached (.detach(), "
                    ".data, .item(), a numpy round-trip, no_grad) or the backward returned "
                    "None for this input -- the gradient is dropped.")
        return (f"{analytical_name} is zero where f changes (numerical up to "
                f"{float(np.max(np.abs(col_n))):.6g} in column {el_in}): it drops the gradient "
                f"of {inp.name} (returns zeros, or misses a term or branch).")
    if callable(reference):
        again = reference(*p.args)
        if _changed(again, reference(*p.args)):
            return ("the analytical reference is non-deterministic: two calls at the same "
                    "inputs returned different Jacobians; make it deterministic first.")
    pattern = _pattern(mm, others, analytical_name)
    if pattern:
        return pattern
    return (f"{analytical_name} is wrong: f is smooth here (the one-sided differences agree, "
            f"and {el_out} / {el_in} is {n_val[m, j]:.10g} to within "
            f"{mm.error[m, j]:.2g}), so {analytical_name} is not the derivative f has (a wrong "
            "formula, a missing term, or a rule that does not match this forward).")


def real_view_host_at(p: Problem, outputs: Sequence[Slot], inp: Slot) -> np.ndarray:
    """The checked outputs at x, evaluated like the perturbed points (no autodiff)."""
    g = OutputsOf(p, [inp.index], outputs)
    return np.asarray(_host(g(real_view(p.args[inp.index]))), dtype=np.float64)


def _changed(a: Any, b: Any) -> bool:
    pa = a if isinstance(a, (tuple, list)) else (a,)
    pb = b if isinstance(b, (tuple, list)) else (b,)
    return any(not np.array_equal(_flat(u), _flat(v), equal_nan=True) for u, v in zip(pa, pb))


def _flat(a: Any) -> np.ndarray:
    if isinstance(a, (tuple, list)):
        return np.concatenate([_flat(b) for b in a]) if a else np.zeros(0)
    return np.zeros(0) if a is None else real_view_host(a) if hasattr(a, "shape") else (
        np.asarray(a, dtype=np.float64).reshape(-1))


def _nondeterministic(p: Problem, outputs: Sequence[Slot]) -> str | None:
    """Two evaluations of f at x, in the same mode, that differ: f is random."""
    inp = p.inputs[0]
    a = real_view_host_at(p, outputs, inp)
    b = real_view_host_at(p, outputs, inp)
    if np.array_equal(a, b, equal_nan=True):
        return None
    diff = np.abs(a - b)
    where = int(np.nanargmax(diff))
    return (f"f is non-deterministic: two evaluations at the same inputs differ by "
            f"{float(diff[where]):.3g} (random numbers without a fixed seed, dropout in "
            "training mode, atomic adds on GPU, state updated between calls). Finite "
            "differences subtract nearby values of f, so any noise above the step's effect "
            "becomes a wrong derivative; fix the randomness (model.eval(), a seeded "
            "generator).")


def _all_zero_column(p: Problem, outputs: Sequence[Slot], mm: Mismatch, m: int, j: int,
                     h: float, x_j: float, analytical_name: str) -> str:
    """The numerical column is exactly zero while the analytical one is not."""
    out, inp = mm.out, mm.inp
    col_a = mm.analytical_values[:, j]
    y = np.abs(p.f0.get(out.index, np.zeros(out.size)))
    need = float(np.max(4 * out.eps * np.maximum(y[col_a != 0], np.finfo(float).tiny)
                        / np.abs(col_a[col_a != 0])))
    if h and float(np.max(np.abs(col_a))) * h < 4 * out.eps * float(np.max(y, initial=0.0)):
        return (f"step below the output's resolution: f(x + h e_j) == f(x) in {out.dtype} for "
                f"{inp.element(j)}: the change |J|*h ~ {float(np.max(np.abs(col_a))) * h:.3g} "
                f"with h = {h:.3g} is below the spacing of {out.name} near |y| = "
                f"{float(np.max(y)):.6g}. Use eps=None (numdiffx's auto step, "
                f"{auto().scale_for(inp.eps, _central()) * max(abs(x_j), 1):.3g} here) or at "
                f"least {need:.3g}.")
    rows = _rows(outputs, out)
    scale = max(abs(x_j), 1.0)
    for big in (1e-3 * scale, 1e-1 * scale, 1.0 * scale):
        plus, minus = _probe(p, outputs, inp, j, [big, -big])
        if np.any(plus[rows] != minus[rows]):
            return (f"f is locally constant: {out.name} does not change when {inp.element(j)} "
                    f"moves by +-{h:.3g}, but does by +-{big:.3g} -- a piecewise-constant f "
                    "(floor, round, quantisation, argmax, a threshold). Its derivative is 0 "
                    f"here; {analytical_name} returns a surrogate (straight-through) gradient, "
                    "which finite differences cannot confirm. Check the surrogate as its own "
                    "function, or mark this input as not requiring grad.")
    return (f"the output does not depend on the perturbed input: {out.name} stayed the same "
            f"when {inp.element(j)} moved by up to +-{scale:.3g}, while {analytical_name} says "
            "it changes. f reads something other than this input -- a detached tensor "
            "(.detach(), .data, a numpy round-trip), a cached value, or a tensor saved in "
            "forward -- so the analytical rule claims a dependence f does not have.")


def _central() -> AbstractMethod:
    from numdiffx._core.stencils import central

    return central()


def _pattern(mm: Mismatch, others: Sequence[Mismatch], analytical_name: str) -> str | None:
    """A wrong constant factor, a transposed Jacobian, or two inputs' gradients swapped."""
    n_mat, a_mat = mm.numerical, mm.analytical_values
    tol = mm.error + mm.atol + mm.rtol * np.abs(a_mat)
    nz = (np.abs(n_mat) > tol) & (np.abs(a_mat) > tol)
    if np.any(nz):
        ratio = a_mat[nz] / n_mat[nz]
        if np.allclose(ratio, ratio[0], rtol=1e-4) and abs(ratio[0] - 1) > 1e-6:
            if abs(ratio[0] - 1) < 1e-2:
                return _uniform_offset(mm, float(ratio[0]), analytical_name)
            return (f"{analytical_name} is {ratio[0]:.6g} times the true derivative everywhere "
                    f"in this block: a wrong constant factor (or sign) in the rule.")
    if n_mat.shape[0] == n_mat.shape[1] and n_mat.shape[0] > 1 and np.all(
            np.abs(n_mat.T - a_mat) <= tol):
        return (f"{analytical_name} is the transpose of the true Jacobian: the rule multiplies by "
                "J instead of J^T (grad_output applied on the wrong side).")
    for other in others:
        if other.inp.index == mm.inp.index or other.out.index != mm.out.index or (
                other.numerical.shape != n_mat.shape):
            continue
        if np.all(np.abs(other.numerical - a_mat) <= tol) and np.all(
                np.abs(n_mat - other.analytical_values) <= other.error + other.atol
                + other.rtol * np.abs(other.analytical_values)):
            return (f"the gradients of {mm.inp.name} and {other.inp.name} are swapped: "
                    f"{analytical_name} returns each input's gradient in the other's place.")
    return None


#: torch.autograd.gradcheck's default tolerances
_TORCH_ATOL, _TORCH_RTOL = 1e-5, 1e-3


def _uniform_offset(mm: Mismatch, ratio: float, analytical_name: str) -> str:
    """The cause of a small uniform relative offset: both readings, and whether torch's
    default tolerance would pass it (an adjoint ODE gradient 8.9e-5 off is one)."""
    offset = ratio - 1
    n_mat, a_mat = mm.numerical, mm.analytical_values
    torch_passes = bool(np.all(np.abs(a_mat - n_mat) <= _TORCH_ATOL
                               + _TORCH_RTOL * np.abs(n_mat)))
    verdict = ("torch.autograd.gradcheck's default atol=1e-5, rtol=1e-3 would pass it"
               if torch_passes else
               "torch.autograd.gradcheck's default atol=1e-5, rtol=1e-3 would fail it too")
    return (f"{analytical_name} is {ratio:.6g} times the true derivative everywhere in this "
            f"block, a uniform relative offset of {offset:+.2g}: either the gradient is "
            "approximate by design (an adjoint ODE solve, checkpointing, an iterative "
            "solver's tolerance; then pass an rtol= that admits it) or the rule has a wrong "
            f"constant factor; {verdict}.")
