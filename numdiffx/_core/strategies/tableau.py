"""Ridders' tableau: Richardson extrapolation across a geometric sequence of steps.

Levels ``h_k = h_0 / ratio**k`` (each one batched evaluation of every still-active
entry) are extrapolated per (entry, output); the estimate of a tableau entry is
``safety * max(|A_kj - A_k,j-1|, |A_kj - A_k-1,j-1|) + R`` with ``R`` the round-off (or
the user's noise level) of f divided by the step, amplified by the extrapolation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from numdiffx.backends import to_host

from ..result import Status

__all__ = ["Level", "extrapolate", "join_blocks"]


@dataclass
class Level:
    """What one level returns for the active entries (E_active rows)."""

    values: Any  # (Ea, M)
    ok: Any  # (Ea, M) bool
    h: Any  # (Ea,) steps used


def extrapolate(
    xp: Any,
    level_fn: Callable[[int, np.ndarray], Level],
    *,
    n_entries: int,
    n_out: int,
    dtype: Any,
    device: Any,
    rule: Any,
    factors: Any,
    roundoff: Any,
    floor: Any,
    deriv: int,
    gate: float | None = None,
    traced: bool = False,
    chunk_entries: int | None = None,
    join: bool = True,
) -> Any:
    """Ridders' tableau over levels, per (entry, output); see :func:`_extrapolate`.

    ``roundoff``: (E, M), or a pair ((E, 1), (1, M)) whose product it is.
    ``chunk_entries`` (eager only): run the whole tableau on consecutive blocks of that
    many entries, one block after the other, so that its state (a dozen arrays per
    element, two rows of the tableau) is bounded by the block, not by the Jacobian.
    Elements are independent, so the result is the same; each level is then one
    batched evaluation per block. ``join=False``: the list of the blocks' (value, error,
    step, status), in order, for a caller that goes on block by block
    (:func:`join_blocks` puts them together).
    """
    kw = dict(n_out=n_out, dtype=dtype, device=device, rule=rule, deriv=deriv, gate=gate)
    if traced or chunk_entries is None or chunk_entries >= n_entries:
        one = _extrapolate(xp, level_fn, n_entries=n_entries, factors=factors,
                           roundoff=_entries_of(roundoff, 0, n_entries), floor=floor,
                           traced=traced, **kw)
        return one if join else [one]
    parts = []
    for start in range(0, n_entries, chunk_entries):
        stop = min(start + chunk_entries, n_entries)

        def block_fn(k: int, rows: np.ndarray, start: int = start) -> Level:
            return level_fn(k, rows + start)

        parts.append(_extrapolate(xp, block_fn, n_entries=stop - start,
                                  factors=factors if factors.shape[0] == 1 else (
                                      factors[start:stop, ...]),
                                  roundoff=_entries_of(roundoff, start, stop),
                                  floor=floor[start:stop, ...], traced=False, **kw))
    return join_blocks(xp, parts) if join else parts


def _entries_of(roundoff: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of the (E, M) round-off, given whole or as the factors of an
    outer product ((E, 1) per entry, (1, M) per output), multiplied for those rows only."""
    if isinstance(roundoff, tuple):
        per_entry, per_output = roundoff
        if per_output.shape[0] != 1:  # (a plan whose scale differs per entry)
            per_output = per_output[start:stop, ...]
        return per_entry[start:stop, ...] * per_output
    return roundoff[start:stop, ...]


def join_blocks(xp: Any, parts: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The blocks' arrays joined along the entries, one output at a time (each output's
    blocks are dropped as it is built: at most one output held twice). Empties
    ``parts``."""
    if len(parts) == 1:
        one = parts.pop()
        return tuple(one)
    joined = []
    for i in range(len(parts[0])):
        joined.append(xp.concat([part[i] for part in parts], axis=0))
        parts[:] = [(*part[:i], None, *part[i + 1:]) for part in parts]
    parts.clear()
    return tuple(joined)


def _extrapolate(
    xp: Any,
    level_fn: Callable[[int, np.ndarray], Level],
    *,
    n_entries: int,
    n_out: int,
    dtype: Any,
    device: Any,
    rule: Any,
    factors: Any,
    roundoff: Any,
    floor: Any,
    deriv: int,
    gate: float | None = None,
    traced: bool = False,
) -> tuple[Any, Any, Any, Any]:
    """Ridders' tableau over levels, per (entry, output). Returns value, error, step, status.

    ``factors`` (E, J) are ``ratio**power_j`` per entry (the entry's stencil decides the
    powers); ``roundoff`` (E, M) is ``noise * sum|w| * |f|``: the round-off of a level is
    ``roundoff / h**deriv``; ``floor`` (E,) the smallest step tried (0 for none);
    ``gate`` the relative accuracy reached before a growing estimate stops an element
    (default ``sqrt(eps)``).

    The state is kept only for the still-active (entry, output) elements, as flat
    vectors: elements leave it as soon as they finish, so later levels cost in
    proportion to what is left (zeros of a sparse Jacobian finish at the second level).
    ``traced`` (under jax.jit, where no value can be read on the host): every level for
    every element, finished elements frozen by a mask instead of removed; the same
    arithmetic, a fixed number of levels.
    """
    eps = float(xp.finfo(dtype).eps)
    atol, rtol = rule.tolerances(eps)
    sqrt_eps = math.sqrt(eps) if gate is None else gate
    n_cols = rule.max_order + 1
    size = n_entries * n_out

    def code(s: Status) -> Any:
        return xp.asarray(int(s), dtype=xp.int8, device=device)

    def full(value: float, kind: Any = None) -> Any:
        return xp.full((idx.shape[0],), value, dtype=dtype if kind is None else kind,
                       device=device)

    def dev(a: np.ndarray) -> Any:
        return xp.asarray(a, device=device)

    if size == 0:
        empty = xp.zeros((n_entries, n_out), dtype=dtype, device=device)
        return empty, empty, empty, xp.zeros((n_entries, n_out), dtype=xp.int8, device=device)
    roundoff_flat = xp.reshape(roundoff, (-1,))
    # no step floor (no noise=): nothing is below it (steps are >= 0)
    zero_floor = not traced and not bool(xp.any(floor > 0))

    def per_element(a: Any) -> Any:
        """(E,) per entry -> (E * M,) per element, in the state's order (eager: an array
        of its own, which :func:`_assemble` may write into)."""
        if not traced and hasattr(xp, "repeat"):
            return xp.repeat(a, n_out)
        return xp.reshape(xp.broadcast_to(xp.expand_dims(a, 1), (n_entries, n_out)), (-1,))
    idx = np.arange(size, dtype=np.int64)  # active flat (entry * M + output) indices
    # (best, best_err, best_h: made by the second level; see _clean_second_level)
    best: Any = None
    best_err: Any = None
    best_h: Any = None
    clean0 = False  # the first level's values all valid (eager only)
    nvalid = full(0, xp.int32)
    ngrow = full(0, xp.int32)
    limited = xp.zeros((size,), dtype=xp.bool, device=device)
    stop = full(int(Status.MAX_ITERATIONS), xp.int8)
    # the range of the levels' own values: where the steps run out unconverged (a kink
    # closer to x than the smallest step), the answer is only known to lie in it
    lo: Any = None
    hi: Any = None
    active = xp.ones((size,), dtype=xp.bool, device=device)  # traced: not yet finished
    prev: list[Any] = []
    finished: list[tuple[Any, ...]] = []

    def retire(sel: np.ndarray, status: Any) -> None:
        state = (best, best_err, best_h, limited, status, lo, hi)
        if 2 * sel.shape[0] >= idx.shape[0]:
            # most of the state (a dense Jacobian's zeros finish at the second level):
            # kept whole, not gathered; the elements still active in it are overridden
            # by the part they finish in later (see assemble)
            finished.append((idx, *state))
            return
        s = dev(sel)
        finished.append((idx[sel], *(xp.take(a, s, axis=0) for a in state)))

    for k in range(rule.max_steps):
        if idx.shape[0] == 0:
            break
        if idx.shape[0] == size:  # nothing retired yet: every element, in order (no
            # index arrays, no gathers: the level's (E, M) values are the state's layout)
            lev = level_fn(k, np.arange(n_entries))
            values, ok = xp.reshape(lev.values, (-1,)), xp.reshape(lev.ok, (-1,))
            h = per_element(lev.h)

            def of_entries(a: Any, ent_d: Any = None) -> Any:
                return per_element(a) if a.ndim == 1 else xp.reshape(xp.broadcast_to(
                    xp.expand_dims(a, 1), (n_entries, n_out, a.shape[1])), (size, -1))
            roundoff_k = roundoff_flat
        else:
            ent = idx // n_out  # sorted, since idx is
            starts = np.empty(ent.shape[0], dtype=bool)
            starts[:1] = True
            np.not_equal(ent[1:], ent[:-1], out=starts[1:])
            lev = level_fn(k, ent[starts])
            rowpos = np.cumsum(starts) - 1
            flat = dev(rowpos * n_out + idx % n_out)
            values = xp.take(xp.reshape(lev.values, (-1,)), flat, axis=0)
            ok = xp.take(xp.reshape(lev.ok, (-1,)), flat, axis=0)
            h = xp.take(lev.h, dev(rowpos), axis=0)
            ent_d = dev(ent)

            def of_entries(a: Any, ent_d: Any = ent_d) -> Any:
                return xp.take(a, ent_d, axis=0)
            roundoff_k = xp.take(roundoff_flat, dev(idx), axis=0)
        if k == 0:
            # the first level only fills the tableau's first column: no estimate yet, so
            # nothing converges, grows, runs out or is exhausted (best_err is inf)
            nvalid = xp.astype(ok, xp.int32)
            clean0 = not traced and bool(xp.all(ok))
            if clean0:  # (the masks would copy every value unchanged)
                prev, lo, hi = [values], values, values
                continue
            prev = [xp.where(ok, values, xp.asarray(math.nan, dtype=dtype, device=device))]
            lo = xp.where(ok, values, full(math.inf))
            hi = xp.where(ok, values, full(-math.inf))
            continue
        fast = None
        if (k == 1 and clean0 and zero_floor and idx.shape[0] == size
                and factors.shape[0] == 1 and bool(xp.all(ok))):
            fast = _clean_second_level(xp, values, prev[0], h, lev.h, roundoff, factors,
                                       rule, deriv, atol, rtol, (n_entries, n_out), device)
        if fast is not None:
            best, best_err, best_h, limited, stop, ended, a = fast
            lo, hi = xp.minimum(prev[0], values), xp.maximum(prev[0], values)
            prev = [values, a]
            nvalid = full(2, xp.int32)
            ngrow = full(0, xp.int32)
            done = to_host(ended)
        else:
            if best is None:
                best, best_err, best_h = full(math.nan), full(math.inf), full(math.nan)
            below = (h < of_entries(floor)) if not zero_floor else xp.zeros_like(ok)
            ok = ok & ~below
            with np.errstate(over="ignore", invalid="ignore"):  # steps near the largest float
                h_q = xp.abs(h) ** deriv
                noise = roundoff_k / xp.where(
                    h_q == 0, xp.asarray(1.0, dtype=dtype, device=device), h_q)
            nvalid = xp.where(ok, nvalid + 1, xp.zeros_like(nvalid))
            row = [xp.where(ok, values, xp.asarray(math.nan, dtype=dtype, device=device))]
            lo = xp.where(ok & active, xp.minimum(lo, values), lo)
            hi = xp.where(ok & active, xp.maximum(hi, values), hi)
            amp: Any = 1.0
            new_err = full(math.inf)
            # (one stencil for all entries: factors (1, J), the same for every element)
            fac_rows = factors if factors.shape[0] == 1 else of_entries(factors)
            for j in range(1, min(k + 1, n_cols)):
                fac = fac_rows[:, j - 1]
                a = row[j - 1] + (row[j - 1] - prev[j - 1]) / (fac - 1.0)
                err = xp.maximum(xp.abs(a - row[j - 1]), xp.abs(a - prev[j - 1]))
                if j < len(prev):
                    # the same column one level up: two lower-order values can agree by
                    # coincidence (a truncation error changing sign between two large
                    # steps); a third, independent value must agree too
                    err = xp.maximum(err, xp.where(nvalid > j + 1, xp.abs(a - prev[j]),
                                                   xp.zeros_like(err)))
                amp = amp * (fac + 1.0) / (fac - 1.0)  # noise gain of one Richardson step
                est = rule.safety * err + amp * noise
                valid = (nvalid > j) & xp.isfinite(est)
                better = valid & (est < best_err) & active
                best = xp.where(better, a, best)
                best_err = xp.where(better, est, best_err)
                best_h = xp.where(better, h, best_h)
                limited = xp.where(better, rule.safety * err <= amp * noise, limited)
                new_err = xp.where(valid, est, new_err)
                row.append(a)
            prev = row
            # converged: tolerance met, or the extrapolation differences are already below
            # the round-off of f (smaller steps could only make the estimate worse)
            converged = (best_err <= atol + rtol * xp.abs(best)) | limited
            # error increased: the newest level's estimates exceed twice the best for
            # two levels in a row. One level is not enough: with a large first step
            # (float32) the tableau is still pre-asymptotic there and its estimates jump
            # about.
            growing = (new_err > 2.0 * best_err) & xp.isfinite(best_err) & (nvalid > 2) & (
                best_err <= sqrt_eps * xp.abs(best))
            ngrow = xp.where(growing, ngrow + 1, xp.zeros_like(ngrow))
            grew = ~converged & (ngrow >= 2)
            # exhausted: the round-off of this level alone exceeds the best estimate.
            # Every later estimate is at least its round-off, which grows as the step
            # shrinks, so none can be better: stop (ROUNDOFF) instead of running into
            # levels of pure round-off (the 6th derivative of cos: 1e-8 at h = 0.125,
            # then 1e12 at 3e-5)
            exhausted = ~converged & ~grew & (noise > best_err) & xp.isfinite(best_err)
            why = xp.where(exhausted, code(Status.ROUNDOFF),
                           xp.where(below, code(Status.MAX_ITERATIONS), stop))
            stop = xp.where(active, xp.where(converged, code(Status.SUCCESS),
                                             xp.where(grew, code(Status.ERROR_INCREASED),
                                                      why)), stop)
            if traced:  # freeze what finished; every element goes on being evaluated
                active = active & ~(converged | grew | exhausted | below)
                continue
            done = to_host(converged | grew | exhausted | below)
        if done.any():
            retire(np.flatnonzero(done), stop)
            keep = np.flatnonzero(~done)
            kd = dev(keep)
            best, best_err, best_h, limited, stop, nvalid, ngrow, lo, hi, active = (
                xp.take(a, kd, axis=0)
                for a in (best, best_err, best_h, limited, stop, nvalid, ngrow, lo, hi, active))
            prev = [xp.take(a, kd, axis=0) for a in prev]
            idx = idx[keep]
    if traced:
        best, best_err, best_h, limited, stop, lo_t, hi_t = (
            xp.reshape(a, (n_entries, n_out))
            for a in (best, best_err, best_h, limited, stop, lo, hi))

        def lo_of() -> Any:
            return lo_t

        def hi_of() -> Any:
            return hi_t
    else:
        if idx.shape[0]:
            retire(np.arange(idx.shape[0]), stop)
        best, best_err, best_h, limited, stop, lo_of, hi_of = _assemble(
            xp, finished, size, (n_entries, n_out), dev)
    maxed = stop == int(Status.MAX_ITERATIONS)
    if traced or bool(xp.any(maxed)):
        with np.errstate(invalid="ignore"):  # inf - inf where a level never was finite
            spread = xp.maximum(hi_of() - best, best - lo_of())
            unconverged = maxed & xp.isfinite(spread)
            best_err = xp.where(unconverged, xp.maximum(best_err, spread), best_err)
    # why each element stopped: converged (SUCCESS here: the stopping tolerance was met),
    # round-off limited (ROUNDOFF: smaller steps could only make it worse), the error grew,
    # or the steps ran out. The rule turns this into the final status (one meaning of
    # SUCCESS for every rule: the estimate within the tolerance).
    bound = rtol * xp.abs(best)
    if atol != 0.0:  # (0.0 + bound is bound: every bound is >= 0 or NaN)
        bound = atol + bound
    final = xp.where(best_err <= bound, code(Status.SUCCESS),
                     xp.where(limited, code(Status.ROUNDOFF), stop))
    if traced or not bool(xp.all(xp.isfinite(best_err))):
        final = xp.where(~xp.isfinite(best_err), code(Status.NON_FINITE), final)
        best = xp.where(final == int(Status.NON_FINITE),
                        xp.asarray(math.nan, dtype=dtype, device=device), best)
    return best, best_err, best_h, final


def _clean_second_level(xp: Any, values: Any, first: Any, h: Any, h_rows: Any,
                        roundoff: Any, factors: Any, rule: Any, deriv: int, atol: float,
                        rtol: float, shape: tuple[int, int], device: Any
                        ) -> tuple[Any, ...] | None:
    """The tableau's second level over every element where both levels' values are all
    valid and no step floor applies (a dense Jacobian: every element, most of which
    finish here): the general level's arithmetic, bit for bit, without the masks and
    state that such a level cannot need (no element has an estimate yet, none can have
    grown, every one is active). ``values``/``first``: the levels' (E * M,) values, ``h``
    the steps per element, ``h_rows`` per entry. None where an estimate is not finite
    (the general level then runs, with its masks).

    Returns best, best_err, best_h, limited, stop, finished (device bool) and the
    extrapolated column ``a`` (the tableau's row)."""
    one = xp.asarray(1.0, dtype=values.dtype, device=device)
    with np.errstate(over="ignore", invalid="ignore"):  # steps near the largest float
        h_q = xp.abs(h_rows) ** deriv  # per entry: the same values as per element
        noise = xp.reshape(xp.reshape(roundoff, shape)
                           / xp.expand_dims(xp.where(h_q == 0, one, h_q), 1), (-1,))
    fac = factors[:, 0]
    a = values + (values - first) / (fac - 1.0)
    err = xp.maximum(xp.abs(a - values), xp.abs(a - first))
    amp = 1.0 * (fac + 1.0) / (fac - 1.0)
    s_err = rule.safety * err
    del err
    amp_noise = amp * noise
    est = s_err + amp_noise
    if not bool(xp.all(xp.isfinite(est))):
        return None
    limited = s_err <= amp_noise
    del s_err, amp_noise
    bound = rtol * xp.abs(a)
    if atol != 0.0:  # (0.0 + bound is bound: every bound is >= 0)
        bound = atol + bound
    converged = (est <= bound) | limited
    del bound
    exhausted = ~converged & (noise > est)
    code = xp.int8

    def c(s: Status) -> Any:
        return xp.asarray(int(s), dtype=code, device=device)
    stop = xp.where(converged, c(Status.SUCCESS),
                    xp.where(exhausted, c(Status.ROUNDOFF), c(Status.MAX_ITERATIONS)))
    return a, est, h, limited, stop, converged | exhausted, a


def _assemble(xp: Any, finished: list[tuple[Any, ...]], size: int, shape: tuple[int, int],
              dev: Callable[[np.ndarray], Any]) -> tuple[Any, ...]:
    """The retired parts' (best, best_err, best_h, limited, stop) as (E, M) arrays, each
    element's state from the latest part it sits in (a part kept whole holds elements
    that went on), and lo, hi as functions (only needed where the steps ran out).

    Where the first part holds every element (a dense Jacobian: kept whole when most
    finished at once) and its arrays are numpy arrays of their own, the later parts'
    elements are written into it in order: no copy of the whole state. Elsewhere the
    parts are joined and gathered."""
    first = finished[0]
    if first[0].shape[0] == size and all(_own_numpy(a) for a in first[1:]) and len(
            {id(a) for a in first[1:]}) == len(first) - 1:
        for part in finished[1:]:
            for base, a in zip(first[1:], part[1:]):
                base[part[0]] = a
        out = [np.reshape(a, shape) for a in first[1:]]
        finished.clear()
        return (*out[:5], lambda: out[5], lambda: out[6])
    # where each element's final state sits in the parts joined in order: the part it
    # finished in, the latest one
    where_is = np.empty(size, dtype=np.int64)
    offset = 0
    for part in finished:
        where_is[part[0]] = np.arange(offset, offset + part[0].shape[0])
        offset += part[0].shape[0]
    take = dev(where_is)

    def assemble(i: int) -> Any:
        return xp.reshape(xp.take(xp.concat([f[i] for f in finished], axis=0), take,
                                  axis=0), shape)

    state = [assemble(i) for i in range(1, 6)]
    return (*state, lambda: assemble(6), lambda: assemble(7))


def _own_numpy(a: Any) -> bool:
    """A numpy array that owns its (writable) data: nothing else sees a write into it."""
    return type(a) is np.ndarray and a.flags.owndata and a.flags.writeable
