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

From g, the Jacobian's detection (:func:`numdiffx._core.sparse.detect`: each variable
moved in batched calls, the rows of g that change at all, compared exactly), symmetrised:
about ``n + 1`` points of g, as many as the dense forward Hessian from g (a detected
pattern pays off over the calls that reuse it). No NaN probe: a NaN spreads through
products with structural zeros, and every spurious entry costs colours.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import device

from numdiffx.backends import to_host

from .evaluation.points import chunk_points
from .sparse import SparsityPattern, detect
from .symmetric import symmetric_pattern

__all__ = ["detect_hessian", "detect_hessian_from_gradient"]

#: relative move of each variable
DETECT_MOVE = 1e-2

Block = tuple[int, int]  # the variables lo <= k < hi


def detect_hessian_from_gradient(prob: Any, chunk_size: int | None, memory_budget: int,
                                 seed: int = 0) -> SparsityPattern:
    """The symmetrised Jacobian pattern of g (``prob``'s f is g)."""
    jac = detect(prob, chunk_size, memory_budget, nan_probe=False, seed=seed)
    return symmetric_pattern(jac.rows, jac.cols, prob.n)


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
