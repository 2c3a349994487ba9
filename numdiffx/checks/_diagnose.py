"""Why a gradient check failed, in words: diagnosis, failure messages, explanations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from array_api_compat import array_namespace

from numdiffx._core.result import Status
from numdiffx._core.stencils import AbstractMethod, ComplexStep, Stencil, resolve_method
from numdiffx._core.strategies.nominal import auto

from . import _frameworks as fw

if TYPE_CHECKING:
    from ._gradcheck import _Setup

__all__ = ["GradcheckError", "explain_perturbation"]


class GradcheckError(AssertionError):
    """A gradient check failed; the message says where, by how much and the likely cause.

    A subclass of ``AssertionError`` (a failed check, like a failed ``assert`` in a
    test), so ``pytest`` reports it as a test failure rather than a crash.
    """


@dataclass
class PairFailure:
    """The comparison of one (output k, input i) Jacobian that failed."""

    k: int
    i: int
    numerical: np.ndarray  # (M, n)
    analytical: np.ndarray | None  # (M, n) or None (no autodiff path at all)
    status: np.ndarray  # (M, n) int8
    steps: np.ndarray  # (n,)
    excess: np.ndarray  # |N - A| - tolerance; > 0 fails


def _np_dtype(dtype: Any) -> np.dtype[Any]:
    return np.dtype(str(dtype).replace("torch.", ""))


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(a) for a in np.unravel_index(flat, shape)) if shape else ()


def _probe(s: _Setup, i: int, k: int, j: int, deltas: Sequence[float]) -> list[np.ndarray]:
    """Output k (flat, float64) at x with element j of input i moved by each delta.

    The perturbed element is computed in the input's dtype, as the engine does.
    """
    from ._gradcheck import _Restricted, _split_rows

    x = s.inputs[i]
    xp = array_namespace(x)
    base = fw.as_numpy(x)
    g = _Restricted(s, [i])
    outs = []
    for d in deltas:
        moved = base.copy().reshape(-1)
        moved[j] = moved[j] + moved.dtype.type(d)
        arg = xp.asarray(moved.reshape(base.shape), dtype=x.dtype, device=fw_device(x))
        flat = fw.as_numpy(g(arg)).astype(np.float64)
        outs.append(_split_rows(s, flat)[k])
    return outs


def fw_device(x: Any) -> Any:
    from array_api_compat import device

    return device(x)


def _auto_step(x_j: float, dtype: Any, method: AbstractMethod) -> float:
    eps = float(np.finfo(_np_dtype(dtype)).eps)
    return auto().scale_for(eps, method) * max(abs(x_j), 1.0)


def diagnose(s: _Setup, fail: PairFailure, method: AbstractMethod, atol: float,
             rtol: float) -> str:
    """The likely cause of one failed (output, input) comparison, in words."""
    x = fw.as_numpy(s.inputs[fail.i]).reshape(-1)
    in_dtype = s.inputs[fail.i].dtype
    name_in, name_out = s.input_names[fail.i], s.output_names[fail.k]
    n_mat, a_mat = fail.numerical, fail.analytical
    a_vals = np.zeros_like(n_mat) if a_mat is None else a_mat
    m, j = (int(v) for v in np.unravel_index(int(np.argmax(fail.excess)), fail.excess.shape))
    h = float(fail.steps[j])
    x_j = float(x[j])
    auto_h = _auto_step(x_j, in_dtype, method)

    # (a') the step vanished in x + h: input resolution
    too_small = fail.status[:, j] == int(Status.STEP_TOO_SMALL)
    if np.any(too_small) or h == 0.0:
        spacing = float(np.spacing(_np_dtype(in_dtype).type(x_j)))
        return (f"step below the input's resolution: {name_in} element {j} is {x_j:.6g} in "
                f"{in_dtype}, where representable numbers are {spacing:.3g} apart, so x + h == x "
                f"and the numerical derivative is undefined (status STEP_TOO_SMALL). A step that "
                f"works: step=None (numdiffx auto step, here h = {max(auto_h, 2 * spacing):.3g})"
                f", or any fixed step of at least {2 * spacing:.3g}.")

    col_n = n_mat[:, j]
    col_a = a_vals[:, j]
    if np.all(col_n == 0) and np.any(col_a != 0):
        # (a) or (b): is the output blind to this step, or to the input altogether?
        big = max(1e-2 * max(abs(x_j), 1.0), 1e3 * h)
        plus, minus = _probe(s, fail.i, fail.k, j, [big, -big])
        moved = bool(np.any(plus != minus))
        if moved:
            out_dtype = s.out_dtypes[fail.k]
            y = np.abs(s.f0[fail.k].reshape(-1).astype(np.float64))
            eps_out = float(np.finfo(_np_dtype(out_dtype)).eps)
            nz = np.abs(col_a) > 0
            need = float(np.max(4 * eps_out * np.maximum(y[nz], np.finfo(np.float64).tiny)
                                / np.abs(col_a[nz])))
            return (f"step below the output's resolution: the numerical column {j} of "
                    f"{name_in} is all zeros because f(x + h e_j) == f(x) in {out_dtype}: the "
                    f"change |J|*h ~ {float(np.max(np.abs(col_a))) * h:.3g} with h = {h:.3g} is "
                    f"below the spacing of {name_out} (~{eps_out * float(np.max(y)):.3g} at "
                    f"|y| = {float(np.max(y)):.6g}). With a larger step the output does move. "
                    f"A step that works: step=None (numdiffx auto step, here h = {auto_h:.3g}) "
                    f"or at least h = {need:.3g}.")
        return (f"the output does not depend on the perturbed input: {name_out} did not change "
                f"at all when {name_in} element {j} moved by +-{h:.3g}, nor by +-{big:.3g}, "
                "while the analytical Jacobian says it should. f computes this output from "
                "something other than this input -- a detached tensor (.detach(), .data, "
                ".numpy() round-trip), a cached value, or a tensor saved in forward and used "
                "instead of the input -- so the analytical rule is claiming a dependence f "
                "does not have (or f is wrong).")

    # (d) a kink or discontinuity inside the stencil: one-sided estimates disagree
    fwd = bwd = 0.0
    if a_mat is not None:
        plus, minus = _probe(s, fail.i, fail.k, j, [h, -h])
        f0 = s.f0[fail.k].reshape(-1).astype(np.float64)
        fwd, bwd = (plus[m] - f0[m]) / h, (f0[m] - minus[m]) / h
        size = max(abs(fwd), abs(bwd))
        if abs(fwd - bwd) > 0.1 * size + 10 * atol:
            return (f"a kink or discontinuity inside the stencil: for {name_in} element {j} = "
                    f"{x_j:.6g} the forward one-sided estimate (f(x+h) - f(x))/h = {fwd:.6g} and "
                    f"the backward one (f(x) - f(x-h))/h = {bwd:.6g} disagree (h = {h:.3g}), so f "
                    "is not differentiable within [x - h, x + h] (relu/abs/max at a tie, a branch, "
                    "rounding). Move the check point away from the kink; the analytical value at a "
                    "kink is a convention, not a derivative.")


    if (a_mat is None or np.all(col_a == 0)) and np.any(col_n != 0):
        if a_mat is None:
            return (f"the analytical Jacobian is None: autodiff found no path from {name_in} to "
                    f"{name_out}, yet the numerical Jacobian is not zero (largest "
                    f"{float(np.max(np.abs(n_mat))):.6g}). The output was detached from the "
                    "input (.detach(), .data, .item(), a numpy round-trip, torch.no_grad) or "
                    "the backward returned None for this input: the gradient is dropped.")
        return (f"the analytical Jacobian is zero where the numerical one is not (column {j}: "
                f"numerical up to {float(np.max(np.abs(col_n))):.6g}): the backward drops the "
                f"gradient for {name_in} (returns zeros, or misses a term/branch).")

    # round-off: the output is too large for its change over the step
    y_max = float(np.max(np.abs(s.f0[fail.k]))) if s.f0[fail.k].size else 0.0
    eps_out = float(np.finfo(_np_dtype(s.out_dtypes[fail.k])).eps)
    roundoff = 2 * eps_out * y_max / h
    if abs(n_mat[m, j] - a_vals[m, j]) <= 2 * roundoff:
        return (f"round-off dominates: {name_out} reaches |y| = {y_max:.6g} in "
                f"{s.out_dtypes[fail.k]}, so each evaluation carries an error "
                f"~{eps_out * y_max:.3g}"
                f" and the difference quotient with h = {h:.3g} an error up to ~{roundoff:.3g}, "
                f"as large as the mismatch {abs(n_mat[m, j] - a_vals[m, j]):.3g}. The analytical "
                "derivative is probably right; use a larger step (step=nd.steps.auto(factor=10))"
                ", a wider dtype (float64), or larger atol.")

    # pattern hints for a wrong rule
    nz = (np.abs(n_mat) > atol) & (np.abs(a_vals) > atol)
    if np.any(nz):
        ratio = a_vals[nz] / n_mat[nz]
        if np.allclose(ratio, ratio[0], rtol=1e-3) and abs(ratio[0] - 1) > 1e-3:
            return (f"the analytical Jacobian is {ratio[0]:.6g} times the numerical one "
                    "everywhere: a wrong constant factor (or sign) in the backward.")
    if n_mat.shape[0] == n_mat.shape[1] and np.allclose(n_mat.T, a_vals, atol=atol, rtol=rtol):
        return ("the analytical Jacobian is the transpose of the numerical one: the backward "
                "multiplies by J instead of J^T (grad_output applied on the wrong side).")
    return (f"the analytical derivative is wrong: f itself is smooth here (the one-sided "
            f"estimates agree: {fwd:.6g} vs {bwd:.6g}), so the backward / custom rule computes "
            "a different derivative than f has.")


def failure_message(s: _Setup, failures: Sequence[PairFailure], causes: Sequence[str],
                    method: AbstractMethod, atol: float, rtol: float, prefix: str = "") -> str:
    """The full GradcheckError text: each failed pair, its worst elements and cause."""
    lines = ["Gradcheck failed."]
    if prefix:
        lines.append(f"  {prefix}; slow-mode recomputation:")
    for fail, cause in zip(failures, causes):
        out_shape = s.out_shapes[fail.k]
        in_shape = tuple(s.inputs[fail.i].shape)
        a_vals = np.zeros_like(fail.numerical) if fail.analytical is None else fail.analytical
        lines.append(f"Jacobian of {s.output_names[fail.k]} (shape {out_shape}) w.r.t. "
                     f"{s.input_names[fail.i]} (shape {in_shape}, {s.inputs[fail.i].dtype}), "
                     f"method={_method_name(method)}:")
        steps = fail.steps
        lines.append(f"  step h used per input element: {_range(steps)}; an element passes when "
                     f"|numerical - analytical| <= atol + rtol*|analytical|, atol={atol:.3g}, "
                     f"rtol={rtol:.3g}")
        order = np.argsort(-fail.excess, axis=None)[:5]
        lines.append("  worst elements [output index, input index]: numerical vs analytical")
        for flat in order:
            m, j = (int(v) for v in np.unravel_index(int(flat), fail.excess.shape))
            if fail.excess[m, j] <= 0:
                break
            ana = "None" if fail.analytical is None else f"{a_vals[m, j]:.10g}"
            lines.append(f"    [{_index(m, out_shape)}, {_index(j, in_shape)}]: "
                         f"{fail.numerical[m, j]:.10g} vs {ana} (|diff| "
                         f"{abs(fail.numerical[m, j] - a_vals[m, j]):.3g}, h={steps[j]:.3g})")
        lines.append(f"  likely cause: {cause}")
    lines.extend(f"  skipped: {reason}" for reason in s.skipped)
    lines.append("  (numerical: each input element j perturbed alone, J[m, j] = "
                 "sum_k w_k f_m(x + o_k h_j e_j) / h_j; nd.explain_perturbation(f, inputs) "
                 "shows every call.)")
    return "\n".join(lines)


def _range(a: np.ndarray) -> str:
    if a.size == 0:
        return "none"
    lo, hi = float(np.min(a)), float(np.max(a))
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g} .. {hi:.3g}"


def _method_name(method: AbstractMethod) -> str:
    if isinstance(method, ComplexStep):
        return "complex_step"
    assert isinstance(method, Stencil)
    offsets = tuple(round(o, 6) for o in method.float_offsets)
    return f"stencil offsets {offsets}, order {method.order}"


def explain_perturbation(
    f: Callable[..., Any],
    inputs: Any,
    *,
    method: object = "central",
    step: object = None,
    max_lines: int = 40,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> str:
    """Describe, for these inputs, exactly how the numerical Jacobian is formed.

    Runs the same :func:`numdiffx.jacobian` calls that :func:`gradcheck` makes, records
    every call of f, and reports: what is perturbed (each element of each input, alone;
    never the outputs and never "dx"), by how much (the step used), the calls made, and
    how each Jacobian entry combines them. Meant for small examples; at most
    ``max_lines`` calls and entries are listed.

    Returns
    -------
    str
        The explanation (print it).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> text = nd.explain_perturbation(lambda x: x ** 2, (np.array([3.0]),), step=1e-3)
    >>> "inputs[0][0] = 3 + 1*h" in text
    True
    """
    from numdiffx._core.api import jacobian

    from ._gradcheck import _Restricted, _setup, _split_rows

    meth = resolve_method(method)
    if not isinstance(meth, Stencil):
        raise ValueError("explain_perturbation describes real stencils; got method "
                         "'complex_step'. Use method='central' (or 'forward').")
    s = _setup(f, inputs, math.inf, input_names, output_names, second_call=False)
    offsets = [float(o) for o in meth.float_offsets]
    weights = [float(w) for w in meth.float_weights]
    lines = [
        f"Numerical Jacobian by finite differences, stencil offsets {tuple(offsets)} with "
        f"weights {tuple(round(w, 6) for w in weights)} (order {meth.order}).",
        "What is perturbed: the INPUTS, one element at a time, by a step h_j of its own "
        "(added to that element only: x + o*h_j*e_j; nothing is added to dx or to the outputs).",
        "f(x) is evaluated once at the unperturbed inputs and reused for offset 0.",
    ]
    listed = 0
    for i in s.diff:
        g = _Restricted(s, [i])
        records: list[tuple[np.ndarray, np.ndarray]] = []
        inner = g.__call__

        def logged(v: Any, _inner: Callable[..., Any] = inner,
                   _rec: list[tuple[np.ndarray, np.ndarray]] = records) -> Any:
            out = _inner(v)
            _rec.append((fw.as_numpy(v).reshape(-1), fw.as_numpy(out).astype(np.float64)))
            return out

        res = jacobian(logged, s.inputs[i], method=meth, step=step, evaluation="loop",
                       full_output=True)
        x = fw.as_numpy(s.inputs[i]).reshape(-1)
        h = fw.as_numpy(res.step).reshape(-1).astype(np.float64)
        name = s.input_names[i]
        lines.append(f"{name} (shape {tuple(s.inputs[i].shape)}, {s.inputs[i].dtype}): step "
                     f"h_j used per element = {_range(h)} "
                     f"({'auto rule' if step is None else 'step=' + repr(step)}; the step "
                     "actually used is (x_j + h) - x_j).")
        lines.append(f"  calls of f ({len(records)}; the unperturbed one gives f(x)):")
        points: dict[tuple[int, float], np.ndarray] = {}
        for c, (v, out) in enumerate(records):
            moved = np.nonzero(v != x)[0]
            if moved.size == 0:
                desc = "unperturbed"
            else:
                parts = []
                for j in (int(t) for t in moved):
                    o = (float(v[j]) - float(x[j])) / h[j] if h[j] else float("nan")
                    o_r = round(o)
                    points[(int(j), float(o_r))] = out
                    parts.append(f"{name}[{int(j)}] = {float(x[j]):.6g} {'+' if o_r >= 0 else '-'}"
                                 f" {abs(o_r)}*h = {float(v[j]):.10g}")
                desc = ", ".join(parts)
            if listed < max_lines:
                lines.append(f"    call {c + 1}: {desc}")
                listed += 1
        f0 = np.concatenate([s.f0[k].reshape(-1).astype(np.float64) for k in s.float_outputs])
        value = fw.as_numpy(res.value).reshape(-1, x.size).astype(np.float64)
        lines.append("  Jacobian entries J[m, j] = (" + " ".join(
            f"{w:+.6g}*f_m(x{'' if o == 0 else f' {o:+g}*h_j*e_j'})" for o, w in
            zip(offsets, weights)) + ") / h_j:")
        rows = _split_rows(s, np.arange(f0.size))
        for k, idx in rows.items():
            for m in (int(r) for r in idx):
                for j in range(x.size):
                    if listed >= max_lines:
                        break
                    vals = [f0[m] if o == 0 else points.get((j, o), np.full(f0.size, np.nan))[m]
                            for o in offsets]
                    terms = " ".join(f"{w:+.6g}*{val:.10g}" for w, val in zip(weights, vals))
                    lines.append(f"    {s.output_names[k]}[{m - int(idx[0])}] / {name}[{j}]"
                                 f": ({terms}) / {h[j]:.6g} = {value[m, j]:.10g}")
                    listed += 1
    if listed >= max_lines:
        lines.append(f"  ... (truncated at max_lines={max_lines})")
    for reason in s.skipped:
        lines.append(f"Skipped: {reason}")
    return "\n".join(lines)
