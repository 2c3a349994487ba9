"""The timing study: Jacobian wall time per backend x method x size.

Cases (the report's): ``two(x) = 2 x``, ``add(x, y) = x + y`` and ``mul(x, y) = x * y``
called through a plain Python wrapper (as a user's closure would be), at n in ``sizes``;
and ``mlp``, the report's 5-128-128-128-5 network (tanh) at input (rows, 5). Methods:
autodiff baselines (``torch.func.jacrev``/``jacfwd``, ``jax.jacfwd`` eager and jitted),
``jacrevfinite`` (the JacrevFinite-style batched forward difference written out below)
and numdiffx's ``jacobian`` in each evaluation mode. Every measurement runs once as
warm-up (excluded: imports, jit compilation, allocator growth), then ``repeats`` times;
the median is reported. Outputs are synchronised before the clock stops
(``torch.cuda.synchronize`` on CUDA, ``block_until_ready`` for jax).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from numdiffx._core.api import jacobian

from ._mlp import make_mlp
from ._networks import BACKENDS, BackendNetwork, backend_available, network_for

__all__ = ["CASES", "DEFAULT_SIZES", "TimingRecord", "format_timing", "jacrev_finite",
           "timing"]

CASES = ("two", "add", "mul", "mlp")
DEFAULT_SIZES = (10, 100, 1000)  # the elementwise cases' n; the MLP uses ``mlp_rows``
NUMDIFFX_MODES = ("batched", "loop", "vmap")


@dataclass(frozen=True)
class TimingRecord:
    """One measurement; ``status`` is "ok" or why it was skipped/failed (median NaN)."""

    case: str
    backend: str
    n: int
    method: str
    median_s: float
    min_s: float
    repeats: int
    dtype: str
    status: str = "ok"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def jacrev_finite(f: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] = 0,
                  delta: float = 1e-6) -> Any:
    """JacrevFinite-style baseline: stack ``x + delta e_i`` copies, ONE batched call of f.

    ``f`` must accept a leading batch axis on every argument. Forward difference
    ``(f(X) - f(x)) / delta`` with a fixed ``delta``, reshaped to the jacrev layout.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> J = jacrev_finite(lambda x: x ** 2, x)
    >>> float(np.max(np.abs(J - np.diag(2 * x)))) < 1e-5
    True
    """
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    xp = array_namespace(*args)
    f0 = f(*[a[None, ...] for a in args])[0]
    jacs = []
    for k in nums:
        x = args[k]
        n = int(np.prod(x.shape))
        eye = xp.eye(n, dtype=x.dtype)
        stacked = xp.reshape(x, (1, n)) + delta * eye                  # (n, n)
        batched = [xp.broadcast_to(a[None, ...], (n, *a.shape)) for a in args]
        batched[k] = xp.reshape(stacked, (n, *x.shape))
        diff = (f(*batched) - f0[None, ...]) / delta                   # (n, *out)
        jac = xp.reshape(xp.moveaxis(diff, 0, -1), (*f0.shape, *x.shape))
        jacs.append(jac)
    return tuple(jacs) if isinstance(argnums, tuple) else jacs[0]


def _wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        return fn(*args)
    return wrapped


_ELEMENTWISE: dict[str, tuple[Callable[..., Any], int]] = {
    "two": (lambda x: 2 * x, 1),
    "add": (lambda x, y: x + y, 2),
    "mul": (lambda x, y: x * y, 2),
}


def _problem(case: str, bnet: BackendNetwork, n: int, seed: int
             ) -> tuple[Callable[..., Any], tuple[Any, ...], int | tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    if case == "mlp":
        return bnet.f, (bnet.asarray(rng.standard_normal((n, 5))),), 0
    fn, nargs = _ELEMENTWISE[case]
    args = tuple(bnet.asarray(rng.standard_normal(n)) for _ in range(nargs))
    return _wrapper(fn), args, (0 if nargs == 1 else (0, 1))


def _methods(backend: str, bnet: BackendNetwork) -> dict[str, Callable[..., Any]]:
    """label -> builder(f, args, argnums) returning a zero-argument callable."""
    out: dict[str, Callable[..., Any]] = {}
    if backend == "torch":
        import torch.func as tf

        out["torch.func.jacrev"] = lambda f, a, k: lambda: tf.jacrev(f, argnums=k)(*a)
        out["torch.func.jacfwd"] = lambda f, a, k: lambda: tf.jacfwd(f, argnums=k)(*a)
    if backend == "jax":
        import jax

        out["jax.jacfwd"] = lambda f, a, k: lambda: jax.jacfwd(f, argnums=k)(*a)

        def jitted(f: Any, a: Any, k: Any) -> Callable[[], Any]:
            g = jax.jit(jax.jacfwd(f, argnums=k))
            return lambda: g(*a)

        out["jax.jit(jacfwd)"] = jitted
    out["jacrevfinite"] = lambda f, a, k: lambda: jacrev_finite(f, *a, argnums=k)
    for mode in NUMDIFFX_MODES:
        out[f"numdiffx[{mode}]"] = (
            lambda f, a, k, mode=mode: lambda: jacobian(f, *a, argnums=k, evaluation=mode))
    return out


def _sync(bnet: BackendNetwork, value: Any) -> None:
    for v in value if isinstance(value, tuple) else (value,):
        bnet.sync(v)


def timing(
    *,
    backends: Sequence[str] | None = None,
    cases: Sequence[str] = CASES,
    sizes: Sequence[int] = DEFAULT_SIZES,
    mlp_rows: Sequence[int] = (20,),
    dtype: str = "float64",
    repeats: int = 3,
    max_loop_points: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[TimingRecord]:
    """Median wall time of each Jacobian method on each installed backend.

    Parameters
    ----------
    backends : sequence of str, optional
        Default: every installed one of ``("numpy", "torch", "jax")``. Requesting a
        backend that is not installed gives one "skipped" record per case.
    cases : sequence of str
        Subset of ``CASES``.
    sizes : sequence of int
        n for the elementwise cases (the Jacobian is n x n).
    mlp_rows : sequence of int
        Input rows of the network case (the Jacobian is rows x 5 x rows x 5).
    dtype : {"float64", "float32"}
    max_loop_points : int
        ``numdiffx[loop]`` (one Python call per point) is skipped above this many input
        elements, to keep the default run short; pass a large value to time it anyway.
    repeats : int
        Timed runs per measurement after one excluded warm-up call; the median is reported.

    Returns
    -------
    list of TimingRecord
        ``status`` says why a method was skipped (e.g. ``evaluation="vmap"`` on a
        backend without vmap).

    Examples
    --------
    >>> recs = timing(backends=("numpy",), cases=("two",), sizes=(3,), repeats=1)
    >>> sorted({r.method for r in recs})[:2]
    ['jacrevfinite', 'numdiffx[batched]']
    """
    unknown = set(cases) - set(CASES)
    if unknown:
        raise ValueError(f"cases={sorted(unknown)} are not known; use a subset of {CASES}.")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}.")
    if backends is None:
        backends = [b for b in BACKENDS if backend_available(b)]
    records: list[TimingRecord] = []
    net = make_mlp("tanh", seed=seed)
    for backend in backends:
        if not backend_available(backend):
            records += [TimingRecord(c, backend, 0, "-", float("nan"), float("nan"), 0, dtype,
                                     f"skipped: {backend} is not installed") for c in cases]
            continue
        bnet = network_for(net, backend, dtype)
        methods = _methods(backend, bnet)
        for case in cases:
            for n in (mlp_rows if case == "mlp" else sizes):
                f, args, argnums = _problem(case, bnet, n, seed)
                size = n * 5 if case == "mlp" else n
                for label, build in methods.items():
                    if label == "numdiffx[loop]" and size > max_loop_points:
                        records.append(TimingRecord(
                            case, backend, n, label, float("nan"), float("nan"), 0, dtype,
                            f"skipped: {size} inputs > max_loop_points={max_loop_points}"))
                        continue
                    if progress is not None:
                        progress(f"{backend} {case} n={n} {label}")
                    records.append(_measure(bnet, case, backend, n, label, dtype, repeats,
                                            build(f, args, argnums)))
    return records


def _measure(bnet: BackendNetwork, case: str, backend: str, n: int, label: str, dtype: str,
             repeats: int, call: Callable[[], Any]) -> TimingRecord:
    try:
        _sync(bnet, call())  # warm-up: excluded
    except ValueError as exc:  # e.g. evaluation="vmap" where the backend has none
        return TimingRecord(case, backend, n, label, float("nan"), float("nan"), 0, dtype,
                            f"skipped: {str(exc).splitlines()[0][:120]}")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _sync(bnet, call())
        times.append(time.perf_counter() - t0)
    return TimingRecord(case, backend, n, label, statistics.median(times), min(times),
                        repeats, dtype)


def format_timing(records: Sequence[TimingRecord]) -> str:
    """One table per case x backend: method rows, size columns, median milliseconds."""
    lines = ["median wall time in ms (warm-up call excluded); ratio to jacrevfinite in []"]
    groups: dict[tuple[str, str], list[TimingRecord]] = {}
    for r in records:
        groups.setdefault((r.case, r.backend), []).append(r)
    for (case, backend), group in groups.items():
        sizes = list(dict.fromkeys(r.n for r in group))
        methods = list(dict.fromkeys(r.method for r in group))
        size_label = "rows" if case == "mlp" else "n"
        lines.append(f"\n{case} on {backend} ({group[0].dtype})")
        header = f"{'method':>20} | " + " | ".join(f"{size_label}={s:<14}" for s in sizes)
        lines.append(header)
        lines.append("-" * len(header))
        skipped = []
        for m in methods:
            cells = []
            for s in sizes:
                cell: TimingRecord | None = next(
                    (r for r in group if r.method == m and r.n == s), None)
                r = cell  # type: ignore[assignment]
                base = next((b for b in group if b.method == "jacrevfinite" and b.n == s), None)
                if r is None or r.status != "ok":
                    if r is not None and r.status not in skipped:
                        skipped.append(f"{m}: {r.status}")
                    cells.append(f"{'skipped':<16}")
                    continue
                ratio = (f"[{r.median_s / base.median_s:5.2f}]"
                         if base is not None and base.status == "ok" else "")
                cells.append(f"{1e3 * r.median_s:8.3f} {ratio:<7}")
            lines.append(f"{m:>20} | " + " | ".join(cells))
        lines += sorted(set(skipped))
    return "\n".join(lines)
