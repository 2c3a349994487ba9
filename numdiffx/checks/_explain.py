"""What "perturbation" means, for these inputs: every call of f a numerical Jacobian makes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from numdiffx._core.api import jacobian
from numdiffx._core.stencils import AbstractMethod, Stencil, resolve_method
from numdiffx.backends.autodiff import to_host
from numdiffx.steps import AbstractStepRule

from ._numerical import resolve_rule, split_rows
from ._problem import OutputsOf, Problem, build_problem, real_view

__all__ = ["explain_perturbation", "explain_problem"]


def _range(a: np.ndarray) -> str:
    if a.size == 0:
        return "none"
    lo, hi = float(np.min(a)), float(np.max(a))
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g} .. {hi:.3g}"


def explain_perturbation(
    f: Callable[..., Any],
    inputs: Any,
    *,
    method: object = "central",
    step: object = None,
    eps: float | None = None,
    max_lines: int = 40,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> str:
    """Describe, for these inputs, exactly how the numerical Jacobian is formed.

    Runs the same :func:`numdiffx.jacobian` calls that :func:`gradcheck` makes, records
    every call of f, and reports: what is perturbed (each element of each checked input,
    alone; never the outputs, never the gradients), by how much (the step used), the
    calls made, and how each Jacobian entry combines them. Inputs follow gradcheck's
    contract: non-arrays and tensors without ``requires_grad`` are passed through.
    Meant for small examples; at most ``max_lines`` calls and entries are listed.

    Returns
    -------
    str
        The explanation (print it).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> text = nd.explain_perturbation(lambda x: x ** 2, (np.array([3.0]),), step=1e-3)
    >>> "in[0][0] = 3 + 1*h" in text
    True
    """
    meth = resolve_method(method)
    if not isinstance(meth, Stencil):
        raise ValueError("explain_perturbation describes real stencils; got method "
                         "'complex_step'. Use method='central' (or 'forward').")
    if isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1:
        raise ValueError(f"max_lines must be a positive int; got {max_lines!r}.")
    p = build_problem(f, inputs, _no_autodiff, input_names=input_names,
                      output_names=output_names)
    return explain_problem(p, meth, resolve_rule(p, eps, step, meth), (), max_lines)


def _no_autodiff(*args: Any) -> None:  # a callable reference: evaluate f plainly
    return None


def explain_problem(p: Problem, method: AbstractMethod, rule: AbstractStepRule,
                    context: Sequence[str] = (), max_lines: int = 40) -> str:
    """The explanation for a validated problem (what gradcheck/gradgradcheck perturb)."""
    assert isinstance(method, Stencil)
    offsets = [float(o) for o in method.float_offsets]
    weights = [float(w) for w in method.float_weights]
    names = ", ".join(s.name for s in p.inputs)
    lines = [f"Numerical Jacobian by finite differences, stencil offsets {tuple(offsets)} "
             f"with weights {tuple(round(w, 6) for w in weights)} (order {method.order})."]
    lines.extend(context)
    lines += [
        f"What is perturbed: the checked inputs ({names}), one element at a time (real and "
        "imaginary parts separately), each by a step h_j of its own: x + o*h_j*e_j. The "
        "outputs are never perturbed; they are only evaluated.",
        "f(x) is evaluated at the unperturbed inputs where the stencil has offset 0.",
    ]
    listed = 0
    for s in p.inputs:
        g = OutputsOf(p, [s.index], p.outputs)
        records: list[tuple[np.ndarray, np.ndarray]] = []

        def logged(v: Any, _g: OutputsOf = g,
                   _rec: list[tuple[np.ndarray, np.ndarray]] = records) -> Any:
            out = _g(v)
            _rec.append((to_host(v).reshape(-1), to_host(out).astype(np.float64)))
            return out

        if s.size == 0 or not p.outputs:
            continue
        res = jacobian(logged, real_view(p.args[s.index]), method=method, step=rule,
                       evaluation="loop", full_output=True)
        x = to_host(real_view(p.args[s.index])).astype(np.float64)
        h = to_host(res.step).reshape(-1).astype(np.float64)
        lines.append(f"{s.name} (shape {s.shape}, {s.dtype}): step h_j used per element = "
                     f"{_range(h)} (the step actually used is (x_j + h) - x_j).")
        lines.append(f"  calls of f ({len(records)}):")
        points: dict[tuple[int, float], np.ndarray] = {}
        f0 = None
        for c, (v, out) in enumerate(records):
            moved = np.nonzero(v != x)[0]
            if moved.size == 0:
                desc, f0 = "unperturbed", out
            else:
                parts = []
                for j in (int(t) for t in moved):
                    o = round((float(v[j]) - float(x[j])) / h[j]) if h[j] else 0
                    points[(j, float(o))] = out
                    parts.append(f"{s.element(j)} = {float(x[j]):.6g} {'+' if o >= 0 else '-'} "
                                 f"{abs(o)}*h = {float(v[j]):.10g}")
                desc = ", ".join(parts)
            if listed < max_lines:
                lines.append(f"    call {c + 1}: {desc}")
                listed += 1
        value = to_host(res.value).reshape(-1, x.size).astype(np.float64)
        lines.append("  Jacobian entries J[m, j] = (" + " ".join(
            f"{w:+.6g}*f_m(x{'' if o == 0 else f' {o:+g}*h_j*e_j'})" for o, w in
            zip(offsets, weights)) + ") / h_j:")
        rows = split_rows(p.outputs, np.arange(value.shape[0]))
        for o_slot in p.outputs:
            for r_pos, m in enumerate(int(r) for r in rows[o_slot.index]):
                for j in range(x.size):
                    if listed >= max_lines:
                        break
                    vals = [(f0[m] if f0 is not None else np.nan) if o == 0 else
                            points.get((j, o), np.full(value.shape[0], np.nan))[m]
                            for o in offsets]
                    terms = " ".join(f"{w:+.6g}*{val:.10g}" for w, val in zip(weights, vals))
                    lines.append(f"    {o_slot.element(r_pos)} / {s.element(j)}: ({terms}) / "
                                 f"{h[j]:.6g} = {value[m, j]:.10g}")
                    listed += 1
    if listed >= max_lines:
        lines.append(f"  ... (truncated at max_lines={max_lines})")
    lines.extend(f"Left out: {reason}" for reason in p.skipped)
    return "\n".join(lines)
