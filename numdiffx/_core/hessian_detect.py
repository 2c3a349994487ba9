"""Detect a Hessian's sparsity pattern: from f by block second differences, or from g.

From a scalar f, a structural zero ``d2f / dx_k dx_l == 0`` (everywhere) makes the
mixed difference of two disjoint blocks of variables S and T vanish exactly::

    D(S, T) = f(x + u_S + u_T) - f(x + u_S) - f(x + u_T) + f(x) = u_S' H u_T + ...

(the integral of the mixed derivatives over the rectangle the moves span), where ``u_S``
moves every variable of S by a random relative amount of random sign (up to 1% of
``max(|x_k|, 1)``). ``D(S, T)`` is nonzero iff some pair of S x T couples (up to an
exact cancellation between random moves, which has probability zero), so the pattern
is found by bisection, as a quadtree over the upper triangle: a diagonal block splits
into two diagonal blocks and the off-block between them; an off-block that is nonzero
splits its larger side; a nonzero pair of single variables is an entry. The diagonal is
always included. One new point per test (the single blocks' points are shared), every
test of a round in one batched call of f, about ``2 log2(n)`` rounds: a band, an
arrowhead or a grid of n variables costs O(n) evaluations, against ``2 n**2`` for the
dense Hessian. Rounding is the only noise: a difference counts as nonzero above
``16 sqrt(n) eps`` times the largest ``|f|`` of its points (a sum of n terms rounds to
about ``sqrt(n) eps`` of its magnitude), and where it is not finite. float64 only: in
float32 that round-off drowns the second differences (refused, saying how to detect in
float64 or from g).

From g, the same bisection with one probe serving many blocks, and exact: moving a set
of variables changes (bit for bit) exactly the rows of g coupled to one of them. At each
level every block splits in two; the candidate pairs are the children of the pairs of
blocks found coupled a level up. A star colouring of that candidate graph
(:func:`~numdiffx._core.symmetric.star_colouring`) groups the child blocks: moving all
the blocks of one colour in one probe, every candidate pair (a, b) is read at a row
block where no other candidate partner shares the colour probed (the star property:
at a's rows in b's colour, or at b's in a's), so one bit per (row block, colour)
decides every candidate. Cost: the candidate graph's star colours per level, ``log2 n``
levels: 67 gradient points for a chained Rosenbrock at n = 2000, 46 for an arrowhead,
125 for a five-point grid (the dense Hessian from g: 2001 forward, 4001 central). Each
probe is compared with x evaluated at the same position of a call of the same shape
(:func:`numdiffx._core.sparse.detect`'s rule), so the bits are exact whatever kernel a
batch size selects. No NaN probe: a NaN spreads through products with structural zeros.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import device

from numdiffx.backends import to_host

from .evaluation.points import chunk_points
from .sparse import SparsityPattern
from .symmetric import star_colouring, star_reads, symmetric_pattern

__all__ = ["detect_hessian", "detect_hessian_from_gradient"]

#: relative move of each variable
DETECT_MOVE = 1e-2

Block = tuple[int, int]  # the variables lo <= k < hi


def detect_hessian_from_gradient(prob: Any, chunk_size: int | None, memory_budget: int,
                                 seed: int = 0) -> SparsityPattern:
    """The Hessian pattern from g (``prob``'s f is g) by bisection of blocks (module doc)."""
    xp, n = prob.xp, prob.n
    x = prob.x_flat
    dev = device(x)
    rng = np.random.default_rng(seed)
    u = xp.asarray(rng.uniform(1e-3, 2e-3, size=n), dtype=x.dtype, device=dev)
    moved = xp.expand_dims(xp.where(x == 0, u, x * (1 + u)), 0)
    still = xp.expand_dims(x, 0)
    per_chunk = chunk_points(n, n, 8, False, memory_budget, chunk_size)
    bases: dict[int, Any] = {}  # probes per call -> g at that many copies of x

    def changed(groups: np.ndarray, k: int) -> np.ndarray:
        """(k, n) host: whether row i of g changes when group c of variables moves."""
        group = xp.expand_dims(xp.asarray(groups, device=dev), 0)
        out = []
        for start in range(0, k, per_chunk):
            ks = xp.expand_dims(xp.arange(start, min(k, start + per_chunk), device=dev), 1)
            mask = group == ks
            with np.errstate(all="ignore"):
                y = prob.evaluator(xp.where(mask, moved, still))
                if prob.evaluator.mode == "loop":
                    base = xp.expand_dims(prob.f0, 0)
                else:  # the same call shape: exact whatever kernel the batch size picks
                    if mask.shape[0] not in bases:
                        bases[mask.shape[0]] = prob.evaluator(xp.where(mask, still, still))
                    base = bases[mask.shape[0]]
            out.append(to_host((y != base) & ~(xp.isnan(y) & xp.isnan(base))))
        return np.concatenate(out, axis=0) if out else np.zeros((0, n), dtype=bool)

    bounds = np.array([0, n], dtype=np.int64)  # block b: variables bounds[b] <= i < bounds[b+1]
    coarse = symmetric_pattern(np.zeros(0, np.int64), np.zeros(0, np.int64), 1 if n else 0)
    while n and np.any(np.diff(bounds) > 1):
        size = np.diff(bounds)
        halves = (size > 1).astype(np.int64) + 1  # children per block
        first_child = np.concatenate([[0], np.cumsum(halves)[:-1]])
        mids = (bounds[:-1] + bounds[1:]) // 2
        bounds = np.unique(np.concatenate([bounds, mids[size > 1]]))
        nb = bounds.size - 1
        # candidates: the children of every coupled pair of blocks (of one block too)
        rows, cols = [], []
        for i in (0, 1):
            for j in (0, 1):
                ok = (i < halves[coarse.rows]) & (j < halves[coarse.cols])
                rows.append(first_child[coarse.rows[ok]] + i)
                cols.append(first_child[coarse.cols[ok]] + j)
        cand = symmetric_pattern(np.concatenate(rows), np.concatenate(cols), nb)
        # a star colouring of the candidates: each candidate pair is read where no other
        # candidate of its row block shares its colour, from one probe per colour
        colours = star_colouring(cand)
        k = int(colours.max()) + 1
        dep = changed(np.repeat(colours, np.diff(bounds)), k)  # (k, n)
        bits = np.logical_or.reduceat(dep, bounds[:-1], axis=1).T  # (blocks, k)
        up = cand.rows <= cand.cols
        first, second = cand.rows[up], cand.cols[up]
        r, c = star_reads(cand, colours, first, second)
        coupled = bits[r, colours[c]] | (first == second)
        coarse = symmetric_pattern(first[coupled], second[coupled], nb)
    return coarse if n else symmetric_pattern(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)


def detect_hessian(prob: Any, chunk_size: int | None, memory_budget: int,
                   seed: int = 0) -> SparsityPattern:
    """The Hessian pattern of a scalar f at ``prob``'s x (module doc)."""
    xp, n = prob.xp, prob.n
    x = prob.x_flat
    dev = device(x)
    rng = np.random.default_rng(seed)
    x_host = np.abs(to_host(prob.real_x).astype(np.float64))
    if prob.eps > 1e-10:
        raise ValueError(
            f"sparsity='detect' from f needs float64: in {prob.dtype} the second differences "
            "of a sum of many terms drown in its round-off and entries would be missed "
            "(silently zero). Detect once at a float64 x and pass the pattern: "
            "p = nd.hessian(f, x64, sparsity='detect', full_output=True).pattern; "
            "nd.hessian(f, x, sparsity=p); or detect from the gradient (grad=g), exactly "
            "in any dtype.")
    move = DETECT_MOVE * np.maximum(x_host, 1.0)
    u = move * rng.uniform(0.5, 1.0, n) * rng.choice([-1.0, 1.0], n)
    u_dev = xp.asarray(u, dtype=prob.real_x.dtype, device=dev)
    arange = xp.arange(n, device=dev)
    f0 = float(np.abs(to_host(prob.f0).astype(np.float64)).reshape(-1)[0]) if n else 0.0
    f0_signed = float(to_host(prob.f0).astype(np.float64).reshape(-1)[0]) if n else 0.0
    per_chunk = chunk_points(n, 1, 8, False, memory_budget, chunk_size)
    tolerance = 16.0 * math.sqrt(max(n, 1)) * prob.eps
    single: dict[Block, float] = {}

    def evaluate(points: list[tuple[Block, Block]]) -> np.ndarray:
        """f at x moved on the union of each point's two blocks (host float64)."""
        out = []
        for start in range(0, len(points), per_chunk):
            part = points[start:start + per_chunk]
            lo1 = xp.asarray([[p[0][0]] for p in part], device=dev)
            hi1 = xp.asarray([[p[0][1]] for p in part], device=dev)
            lo2 = xp.asarray([[p[1][0]] for p in part], device=dev)
            hi2 = xp.asarray([[p[1][1]] for p in part], device=dev)
            a = xp.expand_dims(arange, 0)
            mask = ((a >= lo1) & (a < hi1)) | ((a >= lo2) & (a < hi2))
            probe = xp.where(mask, xp.expand_dims(x + u_dev, 0), xp.expand_dims(x, 0))
            with np.errstate(all="ignore"):
                y = prob.evaluator(probe)
            out.append(to_host(xp.reshape(y, (-1,))).astype(np.float64))
        return np.concatenate(out) if out else np.zeros(0)

    rows: list[int] = []
    cols: list[int] = []
    diagonal: list[Block] = [(0, n)] if n > 1 else []
    tests: list[tuple[Block, Block]] = []
    while diagonal or tests:
        split_diag: list[Block] = []
        for lo, hi in diagonal:
            mid = (lo + hi) // 2
            tests.append(((lo, mid), (mid, hi)))
            split_diag += [b for b in ((lo, mid), (mid, hi)) if b[1] - b[0] > 1]
        diagonal = split_diag
        fresh = sorted({b for t in tests for b in t if b not in single})
        values = evaluate([(b, b) for b in fresh] + tests)
        single.update(zip(fresh, values[:len(fresh)].tolist()))
        both = values[len(fresh):]
        nxt: list[tuple[Block, Block]] = []
        for (s, t), f_st in zip(tests, both.tolist()):
            f_s, f_t = single[s], single[t]
            with np.errstate(all="ignore"):
                d = f_st - f_s - f_t + f0_signed
                big = max(abs(f_st), abs(f_s), abs(f_t), f0)
            if math.isfinite(d) and abs(d) <= tolerance * big:
                continue
            if s[1] - s[0] == 1 and t[1] - t[0] == 1:
                rows.append(s[0])
                cols.append(t[0])
                continue
            if s[1] - s[0] >= t[1] - t[0]:
                mid = (s[0] + s[1]) // 2
                nxt += [((s[0], mid), t), ((mid, s[1]), t)]
            else:
                mid = (t[0] + t[1]) // 2
                nxt += [(s, (t[0], mid)), (s, (mid, t[1]))]
        tests = nxt
    return symmetric_pattern(np.asarray(rows, np.int64), np.asarray(cols, np.int64), n)
