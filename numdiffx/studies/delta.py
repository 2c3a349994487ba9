"""The delta-instability study: Jacobian error against the step, per method and dtype."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from numdiffx._core.api import jacobian

from ._mlp import make_mlp

__all__ = ["DEFAULT_DELTAS", "DeltaRecord", "delta_sweep", "format_table"]

DEFAULT_DELTAS = tuple(10.0 ** -k for k in range(1, 11))


@dataclass(frozen=True)
class DeltaRecord:
    """One row: the Jacobian error of ``method`` with step ``delta`` ("auto" for ours)."""

    activation: str
    dtype: str
    method: str
    delta: float | str
    mean_error: float
    max_error: float
    block_mean_error: float  # mean over the per-sample (non-structurally-zero) block
    nfev: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def delta_sweep(
    *,
    activations: Sequence[str] = ("relu", "tanh"),
    dtypes: Sequence[str] = ("float64", "float32"),
    methods: Sequence[str] = ("forward", "backward", "central"),
    deltas: Sequence[float] = DEFAULT_DELTAS,
    include_auto: bool = True,
    rows: int = 100,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[DeltaRecord]:
    """Error of the batched finite-difference Jacobian of the report's MLP vs the exact one.

    The network 5-128-128-128-5 is applied to an input of shape (rows, 5) drawn from a
    standard normal with ``seed``; the exact Jacobian is analytic. For every activation,
    dtype, method and step the Jacobian is computed in ONE batched evaluation mode, and
    the mean and max absolute errors are recorded; ``delta="auto"`` rows use numdiffx's
    default step rule with the same method.
    """
    records: list[DeltaRecord] = []
    rng = np.random.default_rng(seed)
    x64 = rng.standard_normal((rows, 5))
    for activation in activations:
        net64 = make_mlp(activation, seed=seed)
        exact = net64.jacobian(x64)
        idx = np.arange(rows)
        block_mask = np.zeros(exact.shape, dtype=bool)
        block_mask[idx, :, idx, :] = True
        for dtype in dtypes:
            net = net64.astype(dtype)
            x = x64.astype(dtype)
            for method in methods:
                steps: list[float | str] = list(deltas) + (["auto"] if include_auto else [])
                for delta in steps:
                    if progress is not None:
                        progress(f"{activation} {dtype} {method} {delta}")
                    res = jacobian(net, x, method=method,
                                   step=None if delta == "auto" else float(delta),
                                   evaluation="batched", full_output=True)
                    err = np.abs(res.value.astype(np.float64) - exact)
                    records.append(DeltaRecord(
                        activation, dtype, method, delta, float(err.mean()), float(err.max()),
                        float(err[block_mask].mean()), res.nfev))
    return records


def format_table(records: Sequence[DeltaRecord]) -> str:
    """A readable table: one block per activation x dtype, best fixed delta marked '*'."""
    lines = []
    groups: dict[tuple[str, str], list[DeltaRecord]] = {}
    for r in records:
        groups.setdefault((r.activation, r.dtype), []).append(r)
    for (activation, dtype), group in groups.items():
        methods = list(dict.fromkeys(r.method for r in group))
        deltas = list(dict.fromkeys(r.delta for r in group))
        lines.append(f"\n{activation} network, {dtype}: max |J_fd - J_exact| "
                     "(mean in parentheses); * = best fixed delta per method")
        header = f"{'delta':>8} | " + " | ".join(f"{m:>22}" for m in methods)
        lines.append(header)
        lines.append("-" * len(header))
        best = {}
        for m in methods:
            fixed = [r for r in group if r.method == m and r.delta != "auto"
                     and r.max_error == r.max_error]
            if fixed:
                best[m] = min(fixed, key=lambda r: r.max_error).delta
        for d in deltas:
            cells = []
            for m in methods:
                r = next(r for r in group if r.method == m and r.delta == d)
                mark = "*" if best.get(m) == d else " "
                if r.max_error != r.max_error:  # NaN: the zero-step guard fired
                    cells.append("x+h==x: step lost  ")
                else:
                    cells.append(f"{r.max_error:9.2e} ({r.mean_error:8.2e}){mark}")
            label = d if isinstance(d, str) else f"{d:.0e}"
            lines.append(f"{label:>8} | " + " | ".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)
