"""The delta-instability study: Jacobian error against the step, per method and dtype."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

import numdiffx.steps as _steps
from numdiffx._core.api import jacobian

from ._mlp import MLP, make_mlp
from ._networks import backend_available, network_for

__all__ = ["DEFAULT_DELTAS", "DeltaRecord", "delta_sweep", "format_kinks", "format_table",
           "kink_counts"]

DEFAULT_DELTAS = tuple(10.0 ** -k for k in range(1, 11))
# the stencil offsets (in units of h) each method evaluates, for the kink count
_OFFSETS = {"forward": (1.0,), "backward": (-1.0,), "central": (-1.0, 1.0), "complex_step": ()}


@dataclass(frozen=True)
class DeltaRecord:
    """One row: the Jacobian error of ``method`` with step ``delta``.

    ``delta`` is a float for a fixed step, ``"auto"`` for numdiffx's default rule and
    ``"adaptive"`` for ``nd.steps.adaptive()`` when it exists. ``block_*`` errors are over
    the per-sample diagonal blocks only (the other entries are structurally zero and
    dilute the mean). ``kinks_crossed``: ReLU pre-activations whose sign differs between
    x and a perturbed point, summed over every perturbed input element and stencil offset;
    ``kinked_inputs``: how many perturbed input elements cross at least one kink (both
    zero for tanh and for non-fixed steps).
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

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def kink_counts(net: MLP, x: np.ndarray, h: float, offsets: Sequence[float]) -> tuple[int, int]:
    """(kinks crossed, perturbed inputs crossing >= 1 kink) for steps ``o*h`` of ``x``.

    For every input element x[r, j] and offset o, the pre-activations z of row r at
    x + o*h*e_j are compared in sign with those at x; each sign change is one kink
    crossed. Zero for any smooth activation.
    """
    if net.activation != "relu" or not offsets:
        return 0, 0
    n_in = x.shape[-1]
    base = np.concatenate(net.pre_activations(x), axis=-1) > 0          # (rows, units)
    eye = np.eye(n_in, dtype=x.dtype)
    crossed = np.zeros((n_in, x.shape[0]), dtype=np.int64)
    for o in offsets:
        xp = x[None] + (x.dtype.type(o * h) * eye)[:, None, :]        # (n_in, rows, n_in)
        flips = (np.concatenate(net.pre_activations(xp), axis=-1) > 0) != base[None]
        crossed += flips.sum(axis=-1)
    return int(crossed.sum()), int((crossed > 0).sum())


def _extra_steps(include_auto: bool) -> list[tuple[str, object]]:
    """numdiffx's own step choices: auto always, adaptive once nd.steps.adaptive lands."""
    extra: list[tuple[str, object]] = []
    if include_auto:
        extra.append(("auto", None))
        if hasattr(_steps, "adaptive"):
            extra.append(("adaptive", _steps.adaptive()))
    return extra


def complex_step_valid(activation: str) -> bool:
    """Complex step needs an analytic f: tanh is, ReLU (np.maximum on complex) is not."""
    return activation != "relu"


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
    progress: Callable[[str], None] | None = None,
) -> list[DeltaRecord]:
    """Error of the batched finite-difference Jacobian of the report's MLP vs the exact one.

    The network 5-128-128-128-5 is applied to an input of shape (rows, 5) drawn from a
    standard normal with ``seed``; the exact Jacobian is analytic (float64). For every
    activation, dtype, method and step the Jacobian is computed with
    ``evaluation="batched"`` (one call of the network per chunk) on ``backend``, and the
    mean/max absolute errors over the whole Jacobian and over its per-sample diagonal
    blocks are recorded. ``"auto"`` rows use numdiffx's default step rule (and
    ``"adaptive"`` rows ``nd.steps.adaptive()`` where it exists). ``complex_step`` is
    skipped for ReLU (not analytic). For ReLU, each fixed-step record counts the kinks
    its perturbations cross (:func:`kink_counts`).

    Parameters
    ----------
    activations, dtypes, methods, deltas : sequences
        The grid. Methods are numdiffx method names.
    include_auto : bool
        Add numdiffx's own step choices per method.
    backend : {"numpy", "torch", "jax"}
        Where the network runs (same weights); torch/jax are imported only here.
    rows, seed : int
        Input rows and the seed of the weights and the input.
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
    for activation in activations:
        net64 = make_mlp(activation, seed=seed)
        exact = net64.jacobian(x64)
        exact_blocks = net64.sample_jacobians(x64)                   # (rows, out, in)
        for dtype in dtypes:
            bnet = network_for(net64, backend, dtype)
            x = bnet.asarray(x64)
            xnp = x64.astype(dtype)
            for method in methods:
                if method == "complex_step" and not complex_step_valid(activation):
                    continue
                steps: list[tuple[float | str, object]] = [(float(d), float(d)) for d in deltas]
                steps += _extra_steps(include_auto)  # type: ignore[arg-type]
                for label, step in steps:
                    if progress is not None:
                        progress(f"{activation} {dtype} {method} {label}")
                    res = jacobian(bnet.f, x, method=method, step=step,
                                   evaluation="batched", full_output=True)
                    value = bnet.to_numpy(res.value).astype(np.float64)
                    err = np.abs(value - exact)
                    block_err = np.abs(value[idx, :, idx, :] - exact_blocks)
                    kinks = (kink_counts(net64.astype(dtype), xnp, float(label),
                                         _OFFSETS.get(method, ()))
                             if isinstance(label, float) else (0, 0))
                    records.append(DeltaRecord(
                        activation, dtype, method, label, float(err.mean()), float(err.max()),
                        float(block_err.mean()), float(block_err.max()), int(res.nfev),
                        backend, *kinks))
    return records


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
        header = f"{'delta':>8} | " + " | ".join(f"{m:>22}" for m in methods)
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
        if activation == "relu" and "complex_step" not in methods:
            lines.append("complex_step: not valid for ReLU (np.maximum of a complex number "
                         "is not analytic), skipped.")
        if activation == "relu":
            lines.append(format_kinks(group))
    return "\n".join(lines)


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
