"""The delta-instability study: Jacobian error against the step, per method and dtype.

It reproduces Figure 1 of the report (JacrevFinite: Finite Difference approach to
replacing PyTorch Autograd, B. Hendrata, 2024): the mean and max error of the batched
forward-difference Jacobian of a 5-128-128-128-5 ReLU network at an input of shape
(100, 5), float64, for delta = 1e-1 ... 1e-10. It goes beyond it: backward, central and
complex-step stencils, float32, a tanh network, numdiffx's own ``auto`` and ``adaptive``
steps, and the ReLU kinks that explain the report's "stable range".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import numdiffx as nd

from ._mlp import MLP, make_mlp
from ._networks import backend_available, network_for
from ._report import REPORT

__all__ = ["DEFAULT_DELTAS", "REPRODUCTION_NOTE", "DeltaRecord", "delta_sweep",
           "figure1_finding", "format_kinks", "format_table", "kink_counts"]

DEFAULT_DELTAS = tuple(10.0 ** -k for k in range(1, 11))

#: What the study reproduces of the report and what differs (one paragraph; the CLI
#: wraps it).
REPRODUCTION_NOTE = (
    f'Reproduces Figure 1 of the report ({REPORT}): the forward-difference (JacrevFinite '
    "'plus') Jacobian of a 5-128-128-128-5 ReLU network at x of shape (100, 5), float64, "
    "mean and max error for delta = 1e-1 ... 1e-10: the 'forward' column of the 'relu "
    "network, float64' table (the report found the error smallest for delta between 1e-4 "
    'and 1e-5). What differs: weights and input are drawn by numpy with seed 0 '
    "(torch.nn.Linear's initialisation law), not the report's unseeded torch draws, so "
    'the numbers differ while the shape agrees; the reference is the exact analytic '
    "Jacobian, not torch.func.jacrev (they agree to ~1e-16); the report's Figure 2 (error"
    ' in %) is not reproduced, as the report does not define the percentage. Beyond the '
    'report: backward, central and complex-step stencils, float32, a tanh network, '
    "numdiffx's own steps (auto, adaptive) and the ReLU kinks behind the report's 'stable"
    " range'."
)

# the stencil offsets (in units of h) each method evaluates, for the kink count
_OFFSETS = {"forward": (1.0,), "backward": (-1.0,), "central": (-1.0, 1.0), "complex_step": ()}


@dataclass(frozen=True)
class DeltaRecord:
    """One row: the Jacobian error of ``method`` with step ``delta``.

    ``delta`` is a float for a fixed step, ``"auto"`` for numdiffx's default rule and
    ``"adaptive"`` for ``nd.steps.adaptive()``. ``mean_error``/``max_error`` are over the
    whole (rows, 5, rows, 5) Jacobian, as in the report; ``block_*`` errors are over the
    per-sample diagonal blocks only (the other entries are structurally zero and dilute
    the mean). ``kinks_crossed``: ReLU pre-activations whose sign differs between x and a
    perturbed point, summed over every perturbed input element and stencil offset;
    ``kinked_inputs``: how many perturbed input elements cross at least one kink (both
    zero for tanh and for non-fixed steps). ``step_median``/``step_min``/``step_max``:
    the steps numdiffx actually used, ``(x + h) - x``, over the entries of the diagonal
    blocks (NaN where every step was lost). ``evaluation``: ``"per-sample"`` (the
    network's rows are independent, so each perturbation moves one input column of
    every row at once) or ``"dense"`` (one perturbed copy of the whole input per input
    element, as JacrevFinite does); both give the same difference quotients. ``rows``:
    the input's shape is (rows, 5).
    """

    activation: str
    dtype: str
    method: str
    delta: float | str
    mean_error: float
    max_error: float
    block_mean_error: float
    block_max_error: float
    nfev: int
    backend: str = "numpy"
    kinks_crossed: int = 0
    kinked_inputs: int = 0
    step_median: float = float("nan")
    step_min: float = float("nan")
    step_max: float = float("nan")
    evaluation: str = "per-sample"
    rows: int = 100

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def kink_counts(net: MLP, x: np.ndarray, h: float, offsets: Sequence[float],
                cache: dict[tuple[float, float], np.ndarray] | None = None
                ) -> tuple[int, int]:
    """(kinks crossed, perturbed inputs crossing >= 1 kink) for steps ``o*h`` of ``x``.

    For every input element x[r, j] and offset o, the pre-activations z of row r at
    x + o*h*e_j are compared in sign with those at x; each sign change is one kink
    crossed. Zero for any smooth activation. ``cache`` (a dict for one ``net`` and
    ``x``) keeps the count per (h, o), so stencils sharing an offset share the work.
    """
    if net.activation != "relu" or not offsets:
        return 0, 0
    cache = {} if cache is None else cache
    crossed = np.sum([_crossings(net, x, h, o, cache) for o in offsets], axis=0)
    return int(crossed.sum()), int(np.count_nonzero(crossed))


def _crossings(net: MLP, x: np.ndarray, h: float, o: float,
               cache: dict[tuple[float, float], np.ndarray]) -> np.ndarray:
    """Kinks crossed per (input column, row) by the steps ``o*h e_j``, shape (n_in, rows)."""
    if (h, o) not in cache:
        n_in = x.shape[-1]
        base = np.concatenate(net.pre_activations(x), axis=-1) > 0      # (rows, units)
        xp = x[None] + (x.dtype.type(o * h) * np.eye(n_in, dtype=x.dtype))[:, None, :]
        flips = (np.concatenate(net.pre_activations(xp), axis=-1) > 0) != base[None]
        cache[h, o] = flips.sum(axis=-1)
    return cache[h, o]


def _extra_steps(include_auto: bool) -> list[tuple[str, object]]:
    """numdiffx's own step choices: the default (auto) and the adaptive rule."""
    return [("auto", None), ("adaptive", nd.steps.adaptive())] if include_auto else []


def complex_step_valid(activation: str) -> bool:
    """Complex step needs an analytic f: tanh is, ReLU (np.maximum on complex) is not."""
    return activation != "relu"


def _step_summary(step: np.ndarray, full_shape: tuple[int, ...], rows: int
                  ) -> tuple[float, float, float]:
    """(median, min, max) of the finite positive steps, over the diagonal blocks when
    ``step`` is given per Jacobian entry (adaptive, dense), else over every entry."""
    step = np.abs(np.asarray(step, dtype=np.float64))
    if step.shape == full_shape:
        idx = np.arange(rows)
        step = step[idx, :, idx, :]
    used = step[np.isfinite(step) & (step > 0)]
    if used.size == 0:
        return float("nan"), float("nan"), float("nan")
    return float(np.median(used)), float(used.min()), float(used.max())


def delta_sweep(
    *,
    activations: Sequence[str] = ("relu", "tanh"),
    dtypes: Sequence[str] = ("float64", "float32"),
    methods: Sequence[str] = ("forward", "backward", "central", "complex_step"),
    deltas: Sequence[float] = DEFAULT_DELTAS,
    include_auto: bool = True,
    backend: str = "numpy",
    rows: int = 100,
    seed: int = 0,
    dense: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[DeltaRecord]:
    """Error of the batched finite-difference Jacobian of the report's MLP vs the exact one.

    The network 5-128-128-128-5 of the report (JacrevFinite: Finite Difference approach
    to replacing PyTorch Autograd, B. Hendrata, 2024) is applied to an input of shape
    (rows, 5) drawn from a standard normal with ``seed``; the exact Jacobian is analytic
    (float64) and computed once per activation. For every activation, dtype, method and
    step the Jacobian is computed with ``evaluation="batched"`` (one call of the network
    per chunk) on ``backend``, and the mean/max absolute errors over the whole Jacobian
    and over its per-sample diagonal blocks are recorded. ``"auto"`` rows use numdiffx's
    default step rule and ``"adaptive"`` rows ``nd.steps.adaptive()``. ``complex_step`` is
    skipped for ReLU (not analytic). For ReLU, each fixed-step record counts the kinks its
    perturbations cross (:func:`kink_counts`).

    The network maps each row of x independently, so by default the Jacobian is computed
    with the per-sample sparsity pattern (``nd.SparsityPattern.per_sample``): a
    perturbation moves one input column of all rows at once, 5 perturbed copies per
    stencil offset instead of 500. Every difference quotient is the one the dense
    evaluation forms, at about 1/100 of the cost (``nfev`` says so). Only rounding inside
    the network may differ, as it then runs on batches of another size and BLAS picks its
    kernels by size: errors dominated by round-off can move by tens of percent (as on
    another machine; ``adaptive``, whose stopping decisions follow that rounding, a little
    more), those dominated by truncation agree to many digits; at the default
    100 rows the printed tables agree digit for digit on OpenBLAS. ``dense=True``
    evaluates one perturbed copy of the whole input per input element, as the report's
    JacrevFinite does.

    Parameters
    ----------
    activations, dtypes, methods, deltas : sequences
        The grid. Methods are numdiffx method names.
    include_auto : bool
        Add numdiffx's own step choices (``auto`` and ``adaptive``) per method.
    backend : {"numpy", "torch", "jax"}
        Where the network runs (same weights); torch/jax are imported only here.
    rows, seed : int
        Input rows and the seed of the weights and the input.
    dense : bool
        Evaluate as JacrevFinite does (every input element its own perturbed copy of the
        whole input) instead of with the per-sample pattern: the same quotients, ~100x
        the work.
    progress : callable, optional
        Called with a short label before each Jacobian.

    Returns
    -------
    list of DeltaRecord

    Examples
    --------
    >>> from numdiffx.studies import delta_sweep
    >>> recs = delta_sweep(activations=("tanh",), dtypes=("float64",),
    ...                    methods=("central",), deltas=(1e-5,), rows=3)
    >>> [(r.delta, r.max_error < 1e-8) for r in recs]
    [(1e-05, True), ('auto', True), ('adaptive', True)]
    """
    if not backend_available(backend):
        raise ModuleNotFoundError(f"backend {backend!r} is not installed; install it or use "
                                  "backend='numpy'.")
    records: list[DeltaRecord] = []
    rng = np.random.default_rng(seed)
    x64 = rng.standard_normal((rows, 5))
    idx = np.arange(rows)
    sparse: dict[str, Any] = {}
    if not dense:  # colouring computed once here, cached on the pattern for every call
        sparse = {"sparsity": nd.SparsityPattern.per_sample((rows, 5), (rows, 5)),
                  "sparse_output": False}
    evaluation = "dense" if dense else "per-sample"
    for activation in activations:
        net64 = make_mlp(activation, seed=seed)
        exact_blocks = net64.sample_jacobians(x64)                   # (rows, out, in)
        for dtype in dtypes:
            bnet = network_for(net64, backend, dtype)
            x = bnet.asarray(x64)
            net_dtype, x_dtype = net64.astype(dtype), x64.astype(dtype)
            kink_cache: dict[tuple[float, float], np.ndarray] = {}  # shared by the stencils
            for method in methods:
                if method == "complex_step" and not complex_step_valid(activation):
                    continue
                steps: list[tuple[float | str, object]] = [(float(d), float(d)) for d in deltas]
                steps += _extra_steps(include_auto)  # type: ignore[arg-type]
                for label, step in steps:
                    if progress is not None:
                        progress(f"{activation} {dtype} {method} {label}")
                    res = nd.jacobian(bnet.f, x, method=method, step=step,
                                      evaluation="batched", full_output=True, **sparse)
                    value = bnet.to_numpy(res.value).astype(np.float64)
                    # |J_fd - J_exact|: off the diagonal blocks J_exact is exactly zero
                    err = np.abs(value)
                    err[idx, :, idx, :] = np.abs(value[idx, :, idx, :] - exact_blocks)
                    block_err = err[idx, :, idx, :]
                    kinks = (kink_counts(net_dtype, x_dtype, float(label),
                                         _OFFSETS.get(method, ()), kink_cache)
                             if isinstance(label, float) else (0, 0))
                    records.append(DeltaRecord(
                        activation, dtype, method, label, float(err.mean()), float(err.max()),
                        float(block_err.mean()), float(block_err.max()), int(res.nfev),
                        backend, *kinks,
                        *_step_summary(bnet.to_numpy(res.step), value.shape, rows),
                        evaluation, rows))
    return records


# the report's names for the one-sided stencils (JacrevFinite's method="plus"/"minus")
_COLUMN = {"forward": "forward ('plus')", "backward": "backward ('minus')"}


def _best_fixed(group: Sequence[DeltaRecord], method: str) -> DeltaRecord | None:
    fixed = [r for r in group if r.method == method and isinstance(r.delta, float)
             and r.max_error == r.max_error]
    return min(fixed, key=lambda r: r.max_error) if fixed else None


def format_table(records: Sequence[DeltaRecord]) -> str:
    """A readable table: one block per activation x dtype, best fixed delta marked '*'."""
    lines = []
    groups: dict[tuple[str, str, str], list[DeltaRecord]] = {}
    for r in records:
        groups.setdefault((r.backend, r.activation, r.dtype), []).append(r)
    for (backend, activation, dtype), group in groups.items():
        methods = list(dict.fromkeys(r.method for r in group))
        deltas = list(dict.fromkeys(r.delta for r in group))
        lines.append(f"\n{activation} network, {dtype}, {backend}: max |J_fd - J_exact| "
                     "(mean in parentheses); * = best fixed delta per method")
        header = f"{'delta':>8} | " + " | ".join(f"{_COLUMN.get(m, m):>22}" for m in methods)
        lines.append(header)
        lines.append("-" * len(header))
        best = {m: b.delta for m in methods if (b := _best_fixed(group, m)) is not None}
        for d in deltas:
            cells = []
            for m in methods:
                cell: DeltaRecord | None = next(
                    (r for r in group if r.method == m and r.delta == d), None)
                r = cell  # type: ignore[assignment]
                if r is None:
                    cells.append("-")
                    continue
                mark = "*" if best.get(m) == d else " "
                if r.max_error != r.max_error:  # NaN: the zero-step guard fired
                    cells.append("x+h==x: step lost  ")
                else:
                    cells.append(f"{r.max_error:9.2e} ({r.mean_error:8.2e}){mark}")
            label = d if isinstance(d, str) else f"{d:.0e}"
            lines.append(f"{label:>8} | " + " | ".join(f"{c:>22}" for c in cells))
        lines += _format_chosen_steps(group, methods)
        if activation == "relu" and "complex_step" not in methods:
            lines.append("complex_step: not valid for ReLU (np.maximum of a complex number "
                         "is not analytic), skipped.")
        if activation == "relu":
            lines.append(format_kinks(group))
    return "\n".join(lines)


def _format_chosen_steps(group: Sequence[DeltaRecord], methods: Sequence[str]) -> list[str]:
    """One line per numdiffx rule: the median step it used per method."""
    lines = []
    for rule in ("auto", "adaptive"):
        cells = [f"{m} {r.step_median:.1e}" for m in methods for r in group
                 if r.method == m and r.delta == rule]
        if cells:
            lines.append(f"{rule} step used (median over the blocks' entries): "
                         + ", ".join(cells))
    return lines


def figure1_finding(records: Sequence[DeltaRecord]) -> str | None:
    """The best fixed delta in the report's Figure 1 setting (ReLU, float64, forward),
    next to the report's finding; None when the records do not cover that setting."""
    group = [r for r in records if r.activation == "relu" and r.dtype == "float64"]
    best = _best_fixed(group, "forward")
    if best is None:
        return None
    return (f"The report's Figure 1 setting (relu, float64, forward): smallest max error "
            f"{best.max_error:.1e} at delta = {float(best.delta):.0e} here; the report found "
            "its minimum between 1e-4 and 1e-5.")


def format_kinks(group: Sequence[DeltaRecord]) -> str:
    """The ReLU explanation: kinks crossed per fixed delta, next to the block error."""
    method = "central" if any(r.method == "central" for r in group) else group[0].method
    rows = [r for r in group if r.method == method and isinstance(r.delta, float)]
    lines = [f"Why ReLU errors above ~1e-4 are not an optimum ({method}): a step that "
             "crosses a ReLU kink",
             "differences two linear pieces, so its error is O(1) in the slope change, "
             "not O(h^p).",
             f"{'delta':>8} | {'inputs crossing a kink':>22} | {'kinks crossed':>13} | "
             f"{'block max err':>13}"]
    for r in rows:
        lines.append(f"{r.delta:8.0e} | {r.kinked_inputs:>22d} | {r.kinks_crossed:>13d} | "
                     f"{r.block_max_error:13.2e}")
    clean = [r for r in rows if r.kinks_crossed == 0]
    if clean:
        big = max(r.delta for r in clean)  # type: ignore[type-var]
        lines.append(f"No kink is crossed for delta <= {big:.0e}: below that the error is the "
                     "usual truncation/round-off trade-off; above it, the error is the kinks'.")
    return "\n".join(lines)
