"""Helpers shared by the plans: nested-point reuse, row scatter, scales, size guards."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import device as _device

from numdiffx.backends import to_host

from ..evaluation.points import Differences
from ..result import Status
from ..stencils import AbstractMethod, Stencil

__all__ = ["NestedPoints", "check_dense_fits", "f_scale", "put", "scatter_rows", "step_power"]


class NestedPoints:
    """Reuses f at the points two consecutive levels share.

    With step ratio ``r`` the point ``o * h_(k+1)`` of level k+1 is the point
    ``(o / r) * h_k`` of level k whenever ``o / r`` is also an offset of the stencil
    (``central(order=4)``: +-2 at level k+1 are +-1 at level k; ``forward(order=2)``: 2
    is 1). A level then evaluates only its new offsets and takes the others from the
    level before, for every row whose step halved exactly (steps are powers of two; a
    step rounded against a large ``x`` is evaluated afresh). ``central`` (+-1) has none
    to share, and ``enabled`` is False.

    ``level(keys, h, run_points, denom)``: ``keys`` (host, sorted) name the rows (an
    entry, a colour, the one direction) so that a row finds its values of the previous
    level; ``run_points(offsets, positions)`` returns the raw ``f(x + o h d) - f(x)``
    of the rows at ``positions``, (e, len(offsets), M), and their status (e, M).
    The result equals the stencil's own value ``sum_o w_o (f(x + o h d) - f(x)) /
    denom`` (same order of operations).
    """

    def __init__(self, method: AbstractMethod, ratio: float, xp: Any) -> None:
        from fractions import Fraction

        self.xp = xp
        self.ratio = ratio
        exact = list(method.offsets) if isinstance(method, Stencil) else []
        weights = list(method.float_weights) if isinstance(method, Stencil) else []
        r = Fraction(ratio) if ratio else None  # ratio 0: reuse nothing (traced)
        keep = [i for i, o in enumerate(exact) if o != 0]
        self.offsets = [float(exact[i]) for i in keep]
        self.weights = [weights[i] for i in keep]
        nonzero = [exact[i] for i in keep]
        #: offset index at level k+1 -> offset index at level k with the same point
        self.source = {} if r is None else {i: nonzero.index(o / r)
                                             for i, o in enumerate(nonzero) if o / r in nonzero}
        self.new = [i for i in range(len(nonzero)) if i not in self.source]
        self._prev: tuple[np.ndarray, np.ndarray | None, dict[int, Any], Any] | None = None
        #: the caller's own state between levels (the sparse driver's column steps)
        self.memo: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.source)

    def level(self, keys: np.ndarray, h: Any,
              run_points: Callable[[list[float], np.ndarray], Differences],
              denom: Any | None, nests: np.ndarray | None = None,
              together: bool = False) -> Differences:
        """``nests`` (per key, host) replaces the test that ``h`` halved exactly where
        a key moves several elements (a colour). ``together``: every call moves all
        rows anyway (an elementwise f), so one row evaluated afresh makes all fresh."""
        xp = self.xp
        e = keys.shape[0]
        h_host = None if nests is not None else to_host(h).astype(np.float64)
        reuse = np.zeros(e, dtype=bool)
        if self._prev is not None:
            pkeys, ph, _, pstat = self._prev
            pos = np.clip(np.searchsorted(pkeys, keys), 0, max(pkeys.shape[0] - 1, 0))
            # a row whose previous level failed anywhere (a point outside the domain)
            # is evaluated afresh: its shared points may be the failing ones
            was_ok = to_host(xp.all(pstat == int(Status.SUCCESS), axis=1))
            reuse = (pkeys.shape[0] > 0) & (pkeys[pos] == keys) & was_ok[pos]
            if nests is not None:
                reuse &= nests
            else:
                assert ph is not None and h_host is not None
                reuse &= ph[pos] == self.ratio * h_host
        if together and not reuse.all():
            reuse[:] = False
        fresh, kept = np.flatnonzero(~reuse), np.flatnonzero(reuse)
        per_offset: list[list[Any]] = [[] for _ in self.offsets]
        statuses = []
        if fresh.size:  # every offset
            d = run_points(self.offsets, fresh)
            v, st = d.values, d.status
            for i in range(len(self.offsets)):
                per_offset[i].append(v[:, i, :])
            statuses.append(st)
        if kept.size:  # the new offsets, and the shared ones from the level before
            assert self._prev is not None
            d = run_points([self.offsets[i] for i in self.new], kept)
            v, st = d.values, d.status
            for j, i in enumerate(self.new):
                per_offset[i].append(v[:, j, :])
            pkeys, _, pvals, _ = self._prev
            at = xp.asarray(np.searchsorted(pkeys, keys[kept]), device=_device(v))
            for i, src in self.source.items():
                per_offset[i].append(xp.take(pvals[src], at, axis=0))
            statuses.append(st)  # the shared points all succeeded (was_ok)
        order = np.argsort(np.concatenate([fresh, kept]), kind="stable")
        back = xp.asarray(order, device=_device(v))

        def rows_in_order(parts: list[Any]) -> Any:
            return xp.take(xp.concat(parts, axis=0), back, axis=0) if len(parts) > 1 else (
                parts[0])

        values = [rows_in_order(p) for p in per_offset]
        status = rows_in_order(statuses)
        with np.errstate(all="ignore"):  # inf - inf where f is not finite: status says so
            acc = None
            for g, w in zip(values, self.weights):
                term = g * w
                acc = term if acc is None else acc + term
            assert acc is not None
            if denom is not None:
                acc = acc / xp.expand_dims(denom, 1)
        self._prev = (keys, h_host, {src: values[src] for src in set(self.source.values())},
                      status)
        ok = status == int(Status.SUCCESS)
        return Differences(xp.where(ok, acc, xp.asarray(math.nan, dtype=acc.dtype,
                                                        device=_device(acc))), status)


def step_power(xp: Any, h: Any, q: int) -> Any:
    """``h**q``, 1 where it is 0 (the engine's divisor: the status flags a lost step)."""
    p = h ** q
    return xp.where(p == 0, xp.asarray(1.0, dtype=p.dtype, device=_device(p)), p)


def scatter_rows(xp: Any, parts: list[tuple[np.ndarray, Any, Any]], rows: np.ndarray,
                  device: Any) -> tuple[Any, Any]:
    """Concatenate per-group results and put them back in the order of ``rows``."""
    if len(parts) == 1:
        return parts[0][1], parts[0][2]
    sel = np.concatenate([p[0] for p in parts])
    order = np.empty(sel.shape[0], dtype=np.int64)
    where = {int(r): i for i, r in enumerate(sel)}
    order[:] = [where[int(r)] for r in rows]
    take = xp.asarray(order, device=device)
    vals = xp.concat([p[1] for p in parts], axis=0)
    stat = xp.concat([p[2] for p in parts], axis=0)
    return xp.take(vals, take, axis=0), xp.take(stat, take, axis=0)


def f_scale(xp: Any, f0: Any) -> Any:
    """Per output of a vector f, the magnitude its round-off is taken proportional to.

    ``max(|f_i|, max_j |f_j|)``: an output that is small because of cancellation (the
    last layer of a network, a residual) is computed from intermediate values of the
    size of the other outputs and carries their round-off. Scoring it by ``|f_i|``
    alone made estimates at tiny steps look good by luck (float32 tanh network: true
    error 1.5e-5 where 5e-7 was claimed). Elementwise derivatives keep ``|f_i|``: there
    every output is its own function.
    """
    a = xp.abs(f0)
    if a.shape[0] == 0:
        return a
    top = xp.max(xp.where(xp.isfinite(a), a, xp.zeros_like(a)))
    return xp.maximum(a, top)


def put(xp: Any, target: Any, at: np.ndarray, values: Any) -> Any:
    """``target`` with ``target[at] = values``, built from take/where (jax arrays are
    immutable; array-api-strict has no scatter)."""
    if at.shape[0] == target.shape[0]:
        return values
    inv = np.zeros(target.shape[0], dtype=np.int64)
    inv[at] = np.arange(at.shape[0])
    mask = np.zeros(target.shape[0], dtype=bool)
    mask[at] = True
    dev = _device(target)
    spread = xp.take(values, xp.asarray(inv, device=dev), axis=0)
    return xp.where(xp.asarray(mask, device=dev), spread, target)


def check_dense_fits(m_out: int, n: int, dtype: Any) -> None:
    """Refuse, with the size, a dense result that cannot fit in memory."""
    needed = m_out * n * 16  # bytes of a complex128 result: the most a dtype takes
    if needed <= 2**30:  # a GiB fits anywhere this runs: no need to ask the machine
        return
    limit = dense_bytes_limit()
    needed = m_out * n * 8 * (2 if "complex" in str(dtype) else 1)
    if limit is not None and needed > limit:
        raise ValueError(
            f"the dense Jacobian would be {m_out} x {n} = {m_out * n:.3g} entries "
            f"({needed / 2**30:.1f} GiB), more than half of this machine's memory; pass "
            "sparsity= (a pattern, or 'detect') for a sparse result, or use nd.jvp for "
            "directional derivatives."
        )


@functools.lru_cache(maxsize=1)
def dense_bytes_limit() -> int | None:
    """Half the machine's physical memory, or None where it cannot be read (read once)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None
