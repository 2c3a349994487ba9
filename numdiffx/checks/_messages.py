"""The text of a GradcheckError: the verdict on the first line, the evidence below."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._compare import Mismatch, tolerance_terms
from ._problem import Problem

__all__ = ["failure_message", "verdict"]


def _digits(n: float, a: float) -> int:
    """Significant digits that show where two numbers differ (8 at least)."""
    if not (math.isfinite(n) and math.isfinite(a)) or n == a:
        return 8
    rel = abs(n - a) / max(abs(a), abs(n), 1e-300)
    return int(min(17, max(8, math.ceil(-math.log10(max(rel, 1e-17))) + 2)))


def verdict(mm: Mismatch, cause: str) -> str:
    """'d out[0][2] / d in[1][3]: numerical -2.1615526 vs analytical -2.1615524 (rel 9e-08);
    likely cause: ...'"""
    m, j = mm.worst()
    n = float(mm.numerical[m, j])
    a = float(mm.analytical_values[m, j])
    digits = _digits(n, a)
    ana = "None" if mm.analytical is None else f"{a:.{digits}g}"
    diff = abs(n - a)
    rel = diff / abs(a) if a != 0 else math.inf
    size = f"rel {rel:.2g}" if math.isfinite(rel) else f"|diff| {diff:.2g}"
    return (f"d {mm.out.element(m)} / d {mm.inp.element(j)}: numerical {n:.{digits}g} vs "
            f"analytical {ana} ({size}); likely cause: {cause}")


def _block_lines(mm: Mismatch, limit: int = 5) -> list[str]:
    a_vals = mm.analytical_values
    lines = []
    order = np.argsort(-mm.excess, axis=None)[:limit]
    for flat in order:
        m, j = (int(v) for v in np.unravel_index(int(flat), mm.excess.shape))
        if mm.excess[m, j] <= 0:
            break
        n, a = float(mm.numerical[m, j]), float(a_vals[m, j])
        digits = _digits(n, a)
        ana = "None" if mm.analytical is None else f"{a:.{digits}g}"
        tol = mm.error[m, j] + mm.atol + mm.rtol * abs(a)
        step = f", h={mm.steps[j]:.3g}" if mm.steps.size > j else ""
        lines.append(f"    {mm.out.element(m)} / {mm.inp.element(j)}: {n:.{digits}g} vs {ana} "
                     f"(|diff| {abs(n - a):.2g} > tolerance {tol:.2g}{step})")
    return lines


def failure_message(p: Problem, mismatches: Sequence[Mismatch], causes: Sequence[str], *,
                    what: str, step_desc: str, perturbed: str,
                    context: Sequence[str] = ()) -> str:
    """The full message: verdict line, then tolerance, step, worst elements, other blocks."""
    first = mismatches[0]
    m, j = first.worst()
    a = float(first.analytical_values[m, j])
    n = float(first.numerical[m, j])
    lines = [verdict(first, causes[0])]
    lines.extend(f"  {c}" for c in context)
    lines.append(f"  checked: {what}")
    lines.append(
        f"  an element fails when |numerical - analytical| > FD error estimate + atol + "
        f"rtol*|analytical|; here |diff| {abs(n - a):.2g} > "
        + tolerance_terms(float(first.error[m, j]), first.atol, first.rtol * abs(a)))
    refined = " (this column was differenced again at h/2 to estimate the FD error)" if (
        j in first.refined) else ""
    h = f"h = {first.steps[j]:.3g}" if first.steps.size > j else "h unknown"
    lines.append(f"  step: {h} for {first.inp.element(j)}{refined}; {step_desc}")
    lines.append(f"  worst elements of d {first.out.name} / d {first.inp.name} (numerical vs "
                 "analytical):")
    lines.extend(_block_lines(first))
    for mm, cause in zip(mismatches[1:], causes[1:]):
        count = int(np.sum(mm.excess > 0))
        lines.append(f"  also failing: d {mm.out.name} / d {mm.inp.name} ({count} element(s)); "
                     f"likely cause: {cause}")
        lines.extend(_block_lines(mm, 2))
    lines.extend(f"  left out: {reason}" for reason in p.skipped)
    lines.append(f"  perturbation: {perturbed}")
    return "\n".join(lines)
