"""The timing study: Jacobian wall time and error per backend x method x size.

It reproduces the timing comparison of the report (JacrevFinite: Finite Difference
approach to replacing PyTorch Autograd, B. Hendrata, 2024, section 5.2): ``two(x) = 2 x``,
``f(x, y) = x + y`` and ``g(x, y) = x * y`` (here ``add`` and ``mul``), called through a
Python wrapper and differentiated with respect to their first argument, timed with
``torch.func.jacrev``, ``torch.autograd.grad`` and JacrevFinite. It goes beyond it: the
report's 5-128-128-128-5 tanh network at x of shape (rows, 5), sizes n = 10 ... 1000,
``jacfwd``, numpy and jax, numdiffx, and the error of every result against the exact
Jacobian.

Methods, compared like with like:

- ``jacrevfinite``: the report's algorithm, a batched **forward** difference: stack x and
  the n copies ``x + delta e_i`` (delta = 1e-5, the report's default) into ONE batch of
  n + 1 inputs, call f once, ``J[:, i] = (f(x + delta e_i) - f(x)) / delta``
  (:func:`jacrev_finite`, written once for every array library).
- ``numdiffx forward``: ``nd.jacobian(..., method="forward", evaluation="batched")``, the
  same n + 1 points in one call, with numdiffx's automatic step: the like-for-like rival
  of ``jacrevfinite``.
- ``numdiffx central``: ``method="central"``, 2n + 1 points (about twice the work, about
  the square of the accuracy).
- ``numdiffx default``: ``nd.jacobian(f, *args)`` with every option at its default
  (central, ``evaluation="auto"``: vmap on torch and jax, one call per point on numpy).
- autodiff: ``jacrev`` and ``jacfwd`` (``torch.func`` / ``jax``); ``grad``
  (``torch.autograd.grad`` / ``jax.grad`` of ``sum(f)``): ONE vector-Jacobian product,
  not a Jacobian, the lower bound the report also timed; on jax also ``jax.jit`` of
  ``jacfwd`` and of ``numdiffx forward`` (compilation excluded).

Every measurement runs once as warm-up (excluded: imports, jit compilation, allocator
growth), then ``repeats`` times; the minimum is reported (the least disturbed run: on a
shared machine other jobs only ever add time), the median is kept in the record. Outputs
are synchronised before the clock stops (``torch.cuda.synchronize`` on CUDA,
``block_until_ready`` for jax).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

import numdiffx as nd

from ._mlp import MLP, make_mlp
from ._networks import (
    BACKENDS,
    GPU_BACKENDS,
    BackendNetwork,
    backend_available,
    device_unavailable,
    network_for,
)
from ._report import REPORT

__all__ = ["CASES", "DEFAULT_MLP_ROWS", "DEFAULT_SIZES", "REPRODUCTION_NOTE", "TimingRecord",
           "batched_central_difference", "count_measurements", "format_timing",
           "jacrev_finite", "timing"]

CASES = ("two", "add", "mul", "mlp")
DEFAULT_SIZES = (10, 100, 1000)  # n of the elementwise cases
DEFAULT_MLP_ROWS = (1, 10, 100)  # rows of the network's input (rows, 5)
REPORT_DELTA = 1e-5  # JacrevFinite's default step

#: What the study reproduces of the report and what differs (one paragraph; the CLI
#: wraps it).
REPRODUCTION_NOTE = (
    f'Reproduces section 5.2 of the report ({REPORT}): two(x) = 2x, f(x, y) = x + y and '
    'g(x, y) = x * y through a wrapper, Jacobian with respect to the first argument, '
    'timed with torch.func.jacrev, torch.autograd.grad and JacrevFinite (torch, float64).'
    ' What differs: the report gives one timeit total per method at unstated sizes; here '
    'each cell is the minimum of repeated runs after a warm-up at stated sizes, with the '
    "error of every result; 'jacrevfinite' is the report's algorithm re-implemented (x "
    'and its n copies x + delta e_i, delta = 1e-5, in ONE batched call: a forward '
    'difference, n + 1 points), not its class; autograd.grad computes one vector-Jacobian'
    ' product, not a Jacobian, so it is a lower bound, not a rival. Beyond the report: '
    "jacfwd, numpy and jax, the report's MLP, and numdiffx forward (like for like with "
    'JacrevFinite), central and default.'
)


@dataclass(frozen=True)
class TimingRecord:
    """One measurement.

    ``n`` is the size (rows for ``mlp``); ``inputs`` the number of differentiated input
    elements (of the first argument). ``max_error``: max |J - J_exact| over the result
    (for ``grad``, one vector-Jacobian product, the error of that product); NaN where
    not measured.
    ``status`` is "ok" or the full reason a method was skipped (times NaN).
    """

    case: str
    backend: str
    n: int
    method: str
    median_s: float
    min_s: float
    repeats: int
    dtype: str
    status: str = "ok"
    max_error: float = float("nan")
    inputs: int = 0
    device: str = "cpu"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def jacrev_finite(f: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] = 0,
                  delta: float = REPORT_DELTA) -> Any:
    """The report's JacrevFinite algorithm: a batched forward difference, ONE call of f.

    For each differentiated argument x (n elements), the batch ``[x, x + delta e_1, ...,
    x + delta e_n]`` of n + 1 inputs (the other arguments repeated) goes through f in one
    call; ``J[..., i] = (f(x + delta e_i) - f(x)) / delta``, in the jacrev layout
    ``out.shape + x.shape``. ``f`` must accept a leading batch axis on every argument.
    delta = 1e-5 is the report's default.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> J = jacrev_finite(lambda x: x ** 2, x)
    >>> float(np.max(np.abs(J - np.diag(2 * x)))) < 1e-4
    True
    """
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    xp = array_namespace(*args)
    jacs = []
    for k in nums:
        x = args[k]
        n = int(np.prod(x.shape))
        flat = xp.reshape(x, (1, n))
        stacked = xp.concat([flat, flat + delta * xp.eye(n, dtype=x.dtype,
                                                          device=device_of(x))], axis=0)
        batched = [xp.broadcast_to(a[None, ...], (n + 1, *a.shape)) for a in args]
        batched[k] = xp.reshape(stacked, (n + 1, *x.shape))
        out = f(*batched)                                               # (n + 1, *out)
        diff = (out[1:, ...] - out[:1, ...]) / delta                    # (n, *out)
        out_shape = tuple(out.shape[1:])
        jac = xp.reshape(xp.moveaxis(xp.reshape(diff, (n, -1)), 0, -1), (*out_shape, *x.shape))
        jacs.append(jac)
    return tuple(jacs) if isinstance(argnums, tuple) else jacs[0]


def batched_central_difference(f: Callable[[Any], Any], x: Any, delta: float = 1e-5) -> Any:
    """The least work of a central difference: the 2n copies ``x +- delta e_i`` in ONE call.

    ``J[..., i] = (f(x + delta e_i) - f(x - delta e_i)) / (2 delta)`` in the jacrev layout;
    no f(x), no step control, no checks. The central counterpart of :func:`jacrev_finite`,
    used as the floor that ``nd.jacobian(f, x, method="central", evaluation="batched")`` is
    measured against (``asv_bench``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> J = batched_central_difference(lambda x: x ** 3, x)
    >>> float(np.max(np.abs(J - np.diag(3 * x ** 2)))) < 1e-8
    True
    """
    xp = array_namespace(x)
    n = int(np.prod(x.shape))
    flat = xp.reshape(x, (1, n))
    eye = delta * xp.eye(n, dtype=x.dtype, device=device_of(x))
    out = f(xp.reshape(xp.concat([flat + eye, flat - eye], axis=0), (2 * n, *x.shape)))
    diff = (out[:n, ...] - out[n:, ...]) / (2 * delta)
    out_shape = tuple(out.shape[1:])
    return xp.reshape(xp.moveaxis(xp.reshape(diff, (n, -1)), 0, -1), (*out_shape, *x.shape))


def _wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain Python wrapper, as a user's closure (the report's 'g with wrapper')."""
    def wrapped(*args: Any) -> Any:
        return fn(*args)
    return wrapped


_ELEMENTWISE: dict[str, tuple[Callable[..., Any], int]] = {
    "two": (lambda x: 2 * x, 1),
    "add": (lambda x, y: x + y, 2),
    "mul": (lambda x, y: x * y, 2),
}


def _exact(case: str, net: MLP, host_args: Sequence[np.ndarray]) -> np.ndarray:
    """Exact Jacobian (float64) with respect to the first argument, at the arguments as
    the backend holds them (rounded to the dtype)."""
    if case == "mlp":
        return net.astype("float64").jacobian(host_args[0])
    return {"two": lambda: 2 * np.eye(host_args[0].size),
            "add": lambda: np.eye(host_args[0].size),
            "mul": lambda: np.diag(host_args[1])}[case]()


@dataclass(frozen=True)
class _Problem:
    f: Callable[..., Any]
    args: tuple[Any, ...]
    exact: np.ndarray
    inputs: int


def _problem(case: str, bnet: BackendNetwork, net: MLP, n: int, dtype: str, seed: int
             ) -> _Problem:
    rng = np.random.default_rng(seed)
    host: tuple[np.ndarray, ...]
    if case == "mlp":
        host = (rng.standard_normal((n, 5)).astype(dtype).astype(np.float64),)
        f = bnet.f
    else:
        fn, nargs = _ELEMENTWISE[case]
        host = tuple(rng.standard_normal(n).astype(dtype).astype(np.float64)
                     for _ in range(nargs))
        f = _wrapper(fn)
    args = tuple(bnet.asarray(a) for a in host)
    return _Problem(f, args, _exact(case, net, host), host[0].size)


Builder = Callable[[_Problem], Callable[[], Any]]


def _numdiffx_methods() -> dict[str, Builder]:
    def call(**kw: Any) -> Builder:
        return lambda p: lambda: nd.jacobian(p.f, *p.args, **kw)

    return {"numdiffx forward": call(method="forward", evaluation="batched"),
            "numdiffx central": call(method="central", evaluation="batched"),
            "numdiffx default": call()}


def _torch_methods() -> dict[str, Builder]:
    import torch
    import torch.func as tf

    def grad(p: _Problem) -> Callable[[], Any]:
        leaves = [p.args[0].detach().requires_grad_(True), *p.args[1:]]

        def run() -> Any:
            y = p.f(*leaves)
            return torch.autograd.grad(y, leaves[0], grad_outputs=torch.ones_like(y))[0]
        return run

    return {"torch.func.jacrev": lambda p: lambda: tf.jacrev(p.f)(*p.args),
            "torch.func.jacfwd": lambda p: lambda: tf.jacfwd(p.f)(*p.args),
            "torch.autograd.grad": grad}


def _jax_methods() -> dict[str, Builder]:
    import jax
    import jax.numpy as jnp

    def jit_jacfwd(p: _Problem) -> Callable[[], Any]:
        g = jax.jit(jax.jacfwd(p.f))
        return lambda: g(*p.args)

    def jit_forward(p: _Problem) -> Callable[[], Any]:
        g = jax.jit(lambda *a: nd.jacobian(p.f, *a, method="forward", evaluation="batched"))
        return lambda: g(*p.args)

    def grad(p: _Problem) -> Callable[[], Any]:
        g = jax.grad(lambda *a: jnp.sum(p.f(*a)))
        return lambda: g(*p.args)

    return {"jax.jacrev": lambda p: lambda: jax.jacrev(p.f)(*p.args),
            "jax.jacfwd": lambda p: lambda: jax.jacfwd(p.f)(*p.args),
            "jax.grad": grad, "jax.jit(jax.jacfwd)": jit_jacfwd,
            "jax.jit(numdiffx forward)": jit_forward}


def _methods(backend: str) -> dict[str, Builder]:
    """label -> builder(problem) returning a zero-argument callable."""
    out: dict[str, Builder] = {}
    if backend == "torch":
        out.update(_torch_methods())
    if backend == "jax":
        out.update(_jax_methods())
    out["jacrevfinite"] = lambda p: lambda: jacrev_finite(p.f, *p.args)
    out.update(_numdiffx_methods())
    return out


def _max_error(method: str, bnet: BackendNetwork, value: Any, p: _Problem) -> float:
    """max |J - J_exact|; for grad (a vector-Jacobian product) the error of ones^T J."""
    got = bnet.to_numpy(value).astype(np.float64)
    exact = p.exact
    if method.endswith("grad"):
        exact = exact.sum(axis=tuple(range(exact.ndim - got.ndim)))
    return float(np.max(np.abs(got - exact)))


def count_measurements(backends: Sequence[str], cases: Sequence[str] = CASES,
                       sizes: Sequence[int] = DEFAULT_SIZES,
                       mlp_rows: Sequence[int] = DEFAULT_MLP_ROWS) -> int:
    """How many records :func:`timing` makes (for a progress bar); imports the backends."""
    cells = sum(len(mlp_rows) if c == "mlp" else len(sizes) for c in cases)
    return sum(cells * len(_methods(b)) for b in backends if backend_available(b))


def timing(
    *,
    backends: Sequence[str] | None = None,
    cases: Sequence[str] = CASES,
    sizes: Sequence[int] = DEFAULT_SIZES,
    mlp_rows: Sequence[int] = DEFAULT_MLP_ROWS,
    dtype: str = "float64",
    repeats: int = 3,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> list[TimingRecord]:
    """Median wall time and error of each Jacobian method on each installed backend.

    Parameters
    ----------
    backends : sequence of str, optional
        Default: every installed one of ``("numpy", "torch", "jax")`` (on ``"cuda"``:
        ``("torch", "jax", "cupy")``). Requesting a
        backend that is not installed gives one "skipped" record per case.
    cases : sequence of str
        Subset of ``CASES``: ``two``, ``add``, ``mul`` (n elements each argument, the
        Jacobian with respect to the first, as in the report) and ``mlp`` (the report's
        network, tanh).
    sizes : sequence of int
        n for the elementwise cases (each Jacobian is n x n).
    mlp_rows : sequence of int
        Input rows of the network case (the Jacobian is rows x 5 x rows x 5).
    dtype : {"float64", "float32"}
    repeats : int
        Timed runs per measurement after one excluded warm-up call; the minimum and the
        median are recorded.
    seed : int
        Seed of the inputs and of the network's weights.
    progress : callable, optional
        Called with a short label before each measurement.
    device : {"cpu", "cuda"}
        Where the arrays live: ``"cuda"`` times torch on CUDA, jax on its first GPU and
        cupy (name ``"cupy"`` in ``backends``); a backend that cannot run there gives
        one "skipped" record per case saying why. ``"cpu"``: jax's default device.

    Returns
    -------
    list of TimingRecord
        With the error of every result against the exact Jacobian; ``status`` says in
        full why a method was skipped.

    Examples
    --------
    >>> recs = timing(backends=("numpy",), cases=("two",), sizes=(3,), repeats=1)
    >>> [(r.method, r.max_error < 1e-4) for r in recs][:2]
    [('jacrevfinite', True), ('numdiffx forward', True)]
    """
    unknown = set(cases) - set(CASES)
    if unknown:
        raise ValueError(f"cases={sorted(unknown)} are not known; use a subset of {CASES}.")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}.")
    if backends is None:
        backends = [b for b in (GPU_BACKENDS if device == "cuda" else BACKENDS)
                    if backend_available(b)]
    records: list[TimingRecord] = []
    net = make_mlp("tanh", seed=seed)
    for backend in backends:
        if not backend_available(backend):
            records += [TimingRecord(c, backend, 0, "-", float("nan"), float("nan"), 0, dtype,
                                     f"skipped: {backend} is not installed") for c in cases]
            continue
        reason = device_unavailable(backend, device)
        if reason is not None:
            records += [TimingRecord(c, backend, 0, "-", float("nan"), float("nan"), 0, dtype,
                                     f"skipped: {reason}", device=device) for c in cases]
            continue
        bnet = network_for(net, backend, dtype, device)
        methods = _methods(backend)
        for case in cases:
            for n in (mlp_rows if case == "mlp" else sizes):
                p = _problem(case, bnet, net.astype(dtype), n, dtype, seed)
                for label, build in methods.items():
                    if progress is not None:
                        progress(f"{backend} {case} n={n} {label}")
                    records.append(_measure(bnet, case, n, label, dtype, repeats, p, build))
    return records


def _device(value: Any) -> str:
    device = getattr(value, "device", None)
    if callable(device):
        device = device()
    if device is None and hasattr(value, "devices"):
        device = next(iter(value.devices()))
    return "cpu" if device is None else str(getattr(device, "platform", device))


def _measure(bnet: BackendNetwork, case: str, n: int, label: str, dtype: str,
             repeats: int, p: _Problem, build: Builder) -> TimingRecord:
    try:
        call = build(p)
        value = bnet.sync(call())  # warm-up: excluded
    except (ValueError, TypeError, NotImplementedError) as exc:
        reason = " ".join(str(exc).split())  # whole message, on one line
        return TimingRecord(case, bnet.backend, n, label, float("nan"), float("nan"), 0, dtype,
                            f"skipped: {reason}", inputs=p.inputs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bnet.sync(call())
        times.append(time.perf_counter() - t0)
    return TimingRecord(case, bnet.backend, n, label, statistics.median(times), min(times),
                        repeats, dtype, max_error=_max_error(label, bnet, value, p),
                        inputs=p.inputs, device=_device(value))


def format_timing(records: Sequence[TimingRecord]) -> str:
    """One table per case x backend: method rows, size columns, minimum ms and max error.

    The last line of each table is the like-for-like ratio: numdiffx forward / the
    report's JacrevFinite algorithm (both forward differences, n + 1 points, one call).
    """
    lines = ["minimum wall time in ms over the repeats (warm-up call excluded) and max "
             "|J - J_exact| in ()"]
    groups: dict[tuple[str, str], list[TimingRecord]] = {}
    for r in records:
        groups.setdefault((r.case, r.backend), []).append(r)
    for (case, backend), group in groups.items():
        sizes = list(dict.fromkeys(r.n for r in group))
        methods = list(dict.fromkeys(r.method for r in group))
        size_label = "rows" if case == "mlp" else "n"
        ok = [r for r in group if r.status == "ok"]
        where = f"{backend}, {ok[0].device}" if ok else backend
        lines.append(f"\n{case} on {where} ({group[0].dtype})")
        header = f"{'method':>26} | " + " | ".join(f"{size_label}={s:<17}" for s in sizes)
        lines.append(header)
        lines.append("-" * len(header))
        skipped: list[str] = []
        by = {(r.method, r.n): r for r in group}
        for m in methods:
            cells = []
            for s in sizes:
                cell = by.get((m, s))
                if cell is None or cell.status != "ok":
                    if cell is not None and f"{m}: {cell.status}" not in skipped:
                        skipped.append(f"{m}: {cell.status}")
                    cells.append(f"{'skipped':<19}")
                    continue
                cells.append(f"{1e3 * cell.min_s:9.3f} ({cell.max_error:7.1e})")
            lines.append(f"{m:>26} | " + " | ".join(cells))
        ratios = []
        for s in sizes:
            a, b = by.get(("numdiffx forward", s)), by.get(("jacrevfinite", s))
            if a and b and a.status == b.status == "ok":
                ratios.append(f"{a.min_s / b.min_s:.2f}x at {size_label}={s}")
        if ratios:
            lines.append("numdiffx forward / jacrevfinite (both forward, n + 1 points, one "
                         "call): " + ", ".join(ratios))
        lines += skipped
    return "\n".join(lines)
