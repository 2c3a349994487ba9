"""Symmetric sparsity: Hessian patterns, star colouring and direct recovery.

A sparse Hessian differenced from its gradient ``g`` is the Jacobian of ``g``, but it is
symmetric: ``H_ij`` can be read from column j (row i) or from column i (row j). A
*star colouring* of the adjacency graph of the pattern (vertices the variables, an edge
per off-diagonal nonzero) is a proper colouring in which every path on four vertices
uses at least three colours, so every two-coloured subgraph is a collection of stars
(Gebremedhin, Manne and Pothen, SIAM Review 47 (2005)). Perturbing all the columns of
one colour together, every nonzero is then read off directly: ``H_ij`` sits alone at
row i of colour(j)'s difference (no other neighbour of i has that colour), or else
``H_ji`` sits alone at row j of colour(i)'s (the star's hub is i or j). Its cost is the
star chromatic number, not the column colouring's: an arrowhead (one dense row and
column) needs ``n`` colours as the Jacobian of its gradient and two here.

The greedy colouring below gives each vertex, in a given order, the smallest
colour that makes no two-coloured path on four vertices among the vertices coloured so
far: both the paths it ends (``v - w - x - y``) and those it is inside (``a - v - x - y``
with ``a``, ``x`` of one colour). Both tests are exact (not the distance-2 shortcut), and
run on counts per (vertex, colour) kept up to date as vertices are coloured, so a
vertex costs its degree times the number of colours: an arrowhead of 10**5 variables
colours in well under a second.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .sparse import SparsityPattern

__all__ = ["cached", "hessian_pattern", "is_star_colouring", "layout_index", "star_colouring",
           "star_reads", "symmetric_pattern", "upper_pairs"]

#: per pattern (while it lives): its star colouring and the host tables built from it
_CACHE: weakref.WeakKeyDictionary[SparsityPattern, dict[str, Any]] = (
    weakref.WeakKeyDictionary())


def cached(pattern: SparsityPattern, key: str, build: Callable[[], Any]) -> Any:
    """``build()``, once per ``pattern`` and ``key`` (a pattern is reused across calls:
    the colouring, reads and layouts of a solver's every Hessian are computed once)."""
    table = _CACHE.setdefault(pattern, {})
    if key not in table:
        table[key] = build()
    return table[key]


def hessian_pattern(sparsity: object, n: int) -> SparsityPattern:
    """The user's ``sparsity`` as an ``(n, n)`` symmetric pattern with its diagonal.

    A pattern that is not symmetric is refused (a Hessian is symmetric; the entries
    missing from one triangle say the pattern is wrong, not that H is). The diagonal
    is always computed: the step rule measures each variable's curvature there, and a
    structurally zero diagonal comes out as 0."""
    pattern = SparsityPattern.from_any(sparsity, (n, n))
    key = pattern.rows * n + pattern.cols
    mirror = np.sort(pattern.cols * n + pattern.rows)
    if not np.array_equal(key, mirror):
        lone = np.setdiff1d(key, mirror)
        i, j = int(lone[0] // n), int(lone[0] % n)
        raise ValueError(
            f"a Hessian's sparsity pattern must be symmetric; this one has {lone.size} "
            f"entries whose mirror is missing, e.g. ({i}, {j}) without ({j}, {i}). Pass the "
            "symmetrised pattern: mask | mask.T (boolean), S + S.T (scipy.sparse) or "
            "nd.SparsityPattern((r + c), (c + r), shape) for rows r and cols c.")
    if np.count_nonzero(pattern.rows == pattern.cols) == n:
        return pattern  # the same object: its colouring is cached on it
    return symmetric_pattern(pattern.rows, pattern.cols, n)


def symmetric_pattern(rows: np.ndarray, cols: np.ndarray, n: int) -> SparsityPattern:
    """The union of ``(rows, cols)``, its transpose and the diagonal, ``(n, n)``."""
    diag = np.arange(n, dtype=np.int64)
    return SparsityPattern(np.concatenate([rows, cols, diag]),
                           np.concatenate([cols, rows, diag]), (n, n))


def _adjacency(pattern: SparsityPattern) -> tuple[list[int], list[int], np.ndarray]:
    """CSR of the off-diagonal nonzeros: (pointers, neighbours, degrees)."""
    n = pattern.shape[1]
    off = pattern.rows != pattern.cols
    rows = pattern.rows[off]
    ptr = np.searchsorted(rows, np.arange(n + 1))
    return ptr.tolist(), pattern.cols[off].tolist(), np.diff(ptr)


def star_colouring(pattern: SparsityPattern) -> np.ndarray:
    """(n,) int64 colours of a star colouring of a symmetric ``pattern`` (cached on it).

    Greedy (module doc) in largest-degree-first order and in natural order, the fewer
    colours kept. Colours: 3 on a path (tridiagonal; the star chromatic number), 2 on an
    arrowhead, 5 or 6 on a 2-D five-point grid (5 is its star chromatic number)."""
    def fewest() -> np.ndarray:
        ptr, adj, degree = _adjacency(pattern)
        by_degree = _star_colouring(ptr, adj, np.argsort(-degree, kind="stable").tolist())
        natural = _star_colouring(ptr, adj, list(range(degree.size)))
        return natural if natural.max(initial=0) < by_degree.max(initial=0) else by_degree

    return cached(pattern, "star", fewest)


def _star_colouring(ptr: list[int], adj: list[int], order: list[int]) -> np.ndarray:
    """Greedy star colouring of the adjacency (CSR ``ptr``, ``adj``) in ``order``."""
    n = len(order)
    colour = [-1] * n
    count: list[dict[int, int]] = [{} for _ in range(n)]  # colour -> coloured neighbours
    first: list[dict[int, int]] = [{} for _ in range(n)]  # colour -> first such neighbour
    # bad[w]: colours of coloured neighbours x of w that have another neighbour of w's
    # colour (x - y with colour(y) == colour(w)): a vertex v next to w must avoid them,
    # or v - w - x - y is a two-coloured path
    bad: list[set[int]] = [set() for _ in range(n)]
    for v in order:
        nb = adj[ptr[v]:ptr[v + 1]]
        forbidden: set[int] = set()
        for w in nb:
            if colour[w] >= 0:
                forbidden.add(colour[w])
                forbidden |= bad[w]
        # a - v - x - y: two neighbours a, x of one colour; v must avoid the colours
        # around x (v itself is not counted there yet)
        twice = {k for k, c in count[v].items() if c >= 2}
        if twice:
            for x in nb:
                if colour[x] in twice:
                    forbidden.update(count[x])
        c = 0
        while c in forbidden:
            c += 1
        colour[v] = c
        mine = count[v]
        for w in nb:  # v joins bad[w] where v now has two neighbours of w's colour
            k = colour[w]
            if k >= 0 and mine.get(k, 0) >= 2:
                bad[w].add(c)
        for u in nb:  # u gains a neighbour of colour c
            seen = count[u].get(c, 0) + 1
            count[u][c] = seen
            if seen == 1:
                first[u][c] = v
            elif colour[u] >= 0:
                bad[v].add(colour[u])
                if seen == 2:
                    bad[first[u][c]].add(colour[u])
    return np.asarray(colour, dtype=np.int64)


def _neighbour_colour_counts(pattern: SparsityPattern, colours: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(keys, counts): ``row * C + colour`` of every off-diagonal nonzero's column, and
    how often each occurs (neighbours of that row in that colour)."""
    off = pattern.rows != pattern.cols
    c = int(colours.max(initial=0)) + 1
    return np.unique(pattern.rows[off] * c + colours[pattern.cols[off]], return_counts=True)


def is_star_colouring(pattern: SparsityPattern, colours: np.ndarray) -> bool:
    """Whether ``colours`` is a star colouring of the symmetric ``pattern``: proper, and
    every off-diagonal nonzero (i, j) alone in its colour at row i or at row j."""
    off = pattern.rows != pattern.cols
    r, c = pattern.rows[off], pattern.cols[off]
    if np.any(colours[r] == colours[c]):
        return False
    return bool(np.all(_direct(pattern, colours, r, c) | _direct(pattern, colours, c, r)))


def _direct(pattern: SparsityPattern, colours: np.ndarray, r: np.ndarray, c: np.ndarray
            ) -> np.ndarray:
    """Per nonzero (r, c): whether c is r's only neighbour of colour(c)."""
    keys, counts = _neighbour_colour_counts(pattern, colours)
    if keys.size == 0:  # no off-diagonal nonzero at all (a diagonal pattern)
        return np.zeros(r.shape, dtype=bool)
    k = int(colours.max(initial=0)) + 1
    at = np.searchsorted(keys, r * k + colours[c])
    at = np.minimum(at, keys.size - 1)
    return (keys[at] == r * k + colours[c]) & (counts[at] == 1)


def star_reads(pattern: SparsityPattern, colours: np.ndarray, first: np.ndarray,
               second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each entry ``(first, second)`` of the Hessian is read in the colour groups'
    differences of g: ``(row, column)``, the column's colour naming the group.

    The diagonal at ``(i, i)`` (a proper colouring: no neighbour of i shares its
    colour); an off-diagonal entry at ``(i, j)`` where j is i's only neighbour of its
    colour, else at ``(j, i)`` (a star colouring promises one of the two)."""
    direct = _direct(pattern, colours, first, second) | (first == second)
    if not np.all(direct | _direct(pattern, colours, second, first)):
        raise ValueError("the colouring is not a star colouring of this pattern.")
    return np.where(direct, first, second), np.where(direct, second, first)


def upper_pairs(pattern: SparsityPattern) -> np.ndarray:
    """(k, 2) the strictly upper nonzeros ``i < j`` of a symmetric pattern, row-major."""
    up = pattern.rows < pattern.cols
    return np.stack([pattern.rows[up], pattern.cols[up]], axis=1).astype(np.int64)


def layout_index(pattern: SparsityPattern, first: np.ndarray, second: np.ndarray
                 ) -> np.ndarray:
    """(nnz,) for each nonzero of the full symmetric ``pattern`` (row-major), the entry
    ``e`` with ``{first[e], second[e]} == {row, col}``."""
    n = pattern.shape[1]
    lo, hi = np.minimum(first, second), np.maximum(first, second)
    keys = lo * n + hi
    order = np.argsort(keys, kind="stable")
    want = np.minimum(pattern.rows, pattern.cols) * n + np.maximum(pattern.rows, pattern.cols)
    at = order[np.searchsorted(keys[order], want)]
    return at.astype(np.int64)
