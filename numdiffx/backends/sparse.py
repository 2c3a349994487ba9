"""The backend-neutral sparse Jacobian and dense scatter (numpy alone suffices).

Returned where the array library has no sparse type of its own; converts to scipy,
torch and jax sparse types through their adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numdiffx.backends import to_host

__all__ = ["SparseJacobian", "scatter_dense"]


@dataclass(frozen=True, eq=False)
class SparseJacobian:
    """Backend-neutral sparse Jacobian: COO coordinates and values in the input's namespace.

    Returned where the array library has no sparse type of its own (numpy without scipy,
    array-api-strict, ...); numpy with scipy gives ``scipy.sparse.csr_array``, torch a
    sparse COO tensor and jax a ``BCOO``. It works on a core install (numpy alone):

    - ``shape``, ``nnz``, ``dtype``; ``toarray()`` / ``todense()`` give the dense
      ``(out.size, in.size)`` matrix in the data's namespace and on its device;
      ``np.asarray(J)`` a numpy copy on the host;
    - ``J @ v`` (``v`` of shape ``(in.size,)`` or ``(in.size, k)``) and ``u @ J``
      without densifying, in the data's namespace;
    - ``to_scipy()`` (``scipy.sparse.csr_array``, needs scipy), ``to_torch()`` (a sparse
      COO tensor) and ``to_jax()`` (a ``BCOO``), each needing that library.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> J = nd.SparseJacobian(np.array([0, 1]), np.array([1, 0]), np.array([2.0, 3.0]), (2, 2))
    >>> J
    SparseJacobian(shape=(2, 2), nnz=2, dtype=float64)
    >>> J.toarray().tolist(), (J @ np.array([1.0, 10.0])).tolist()
    ([[0.0, 2.0], [3.0, 0.0]], [20.0, 3.0])
    """

    rows: Any
    cols: Any
    data: Any
    shape: tuple[int, int]

    #: numpy defers ``ndarray @ J`` to :meth:`__rmatmul__` instead of densifying J
    __array_ufunc__ = None

    def __repr__(self) -> str:
        return f"SparseJacobian(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"

    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return int(self.data.shape[0])

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return 2

    def toarray(self) -> Any:
        """The dense ``(out.size, in.size)`` matrix in the data's namespace and device."""
        from array_api_compat import array_namespace, device

        xp = array_namespace(self.data)
        return scatter_dense(xp, self.rows, self.cols, self.data, self.shape, device(self.data))

    def todense(self) -> Any:
        """Same as :meth:`toarray` (scipy's spelling)."""
        return self.toarray()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=to_host(self.data).dtype)
        dense[to_host(self.rows), to_host(self.cols)] = to_host(self.data)
        return dense if dtype is None else dense.astype(dtype)

    def _product(self, other: Any, transpose: bool) -> Any:
        """``J @ other`` (or ``J.T @ other``) by gathers and sums: any array namespace."""
        from array_api_compat import array_namespace, device

        xp = array_namespace(self.data)
        out_idx, in_idx = (self.cols, self.rows) if transpose else (self.rows, self.cols)
        m = self.shape[1] if transpose else self.shape[0]
        k = self.shape[0] if transpose else self.shape[1]
        if other.shape[0] != k:
            op = "u @ J" if transpose else "J @ v"
            raise ValueError(f"{op}: the operand has {other.shape[0]} rows but J has shape "
                             f"{self.shape}; it needs {k}.")
        dev = device(self.data)
        vals = xp.take(other, xp.asarray(in_idx, device=dev), axis=0)  # (nnz, ...)
        prod = vals * xp.reshape(self.data, (-1,) + (1,) * (other.ndim - 1))
        table = _segment_table(to_host(out_idx), m)  # (m, width) positions, nnz = padding
        padded = xp.concat([prod, xp.zeros((1, *prod.shape[1:]), dtype=prod.dtype,
                                           device=dev)], axis=0)
        gathered = xp.take(padded, xp.asarray(table.reshape(-1), device=dev), axis=0)
        gathered = xp.reshape(gathered, (m, table.shape[1], *prod.shape[1:]))
        return xp.sum(gathered, axis=1)

    def __matmul__(self, v: Any) -> Any:
        return self._product(v, transpose=False)

    def __rmatmul__(self, u: Any) -> Any:
        from array_api_compat import array_namespace

        xp = array_namespace(u)
        if u.ndim == 1:
            return self._product(u, transpose=True)
        return xp.permute_dims(self._product(xp.permute_dims(u, (1, 0)), transpose=True), (1, 0))

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csr_array`` on the host (needs scipy)."""
        from importlib.util import find_spec

        if find_spec("scipy") is None:
            raise ImportError("SparseJacobian.to_scipy() needs scipy: pip install scipy "
                              "(or use toarray() / J @ v, which need numpy only).")
        from numdiffx.backends import adapter

        rows, cols, data = (to_host(a) for a in (self.rows, self.cols, self.data))
        return adapter("numpy").sparse_from_host(rows, cols, data, self.shape)

    def to_torch(self) -> Any:
        """A coalesced sparse COO ``torch.Tensor`` on the CPU (needs torch)."""
        return self._to("torch")

    def to_jax(self) -> Any:
        """A ``jax.experimental.sparse.BCOO`` matrix (needs jax)."""
        return self._to("jax")

    def _to(self, library: str) -> Any:
        from importlib.util import find_spec

        if find_spec(library) is None:
            raise ImportError(f"SparseJacobian.to_{library}() needs {library}: pip install "
                              f"'numdiffx[{library}]'.")
        from numdiffx.backends import adapter

        rows, cols, data = (to_host(a) for a in (self.rows, self.cols, self.data))
        return adapter(library).sparse_from_host(rows, cols, data, self.shape)


def _segment_table(index: np.ndarray, m: int) -> np.ndarray:
    """(m, width) host table: row r lists the positions p with ``index[p] == r`` (in
    order), padded with ``len(index)`` (a zero appended by the caller)."""
    nnz = index.shape[0]
    counts = np.bincount(index, minlength=m) if nnz else np.zeros(m, dtype=np.int64)
    width = int(counts.max(initial=0))
    order = np.argsort(index, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if m else np.zeros(0, np.int64)
    table = np.full((m, width), nnz, dtype=np.int64)
    if nnz:
        sorted_idx = index[order]
        slot = np.arange(nnz) - starts[sorted_idx]
        table[sorted_idx, slot] = order
    return table


def scatter_dense(xp: Any, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  dev: Any) -> Any:
    """Dense (m, n) matrix with ``data`` at ``(rows, cols)``.

    A gather, not a scatter, so it works in every namespace (immutable jax arrays, and
    array-api-strict, which has no fancy ``__setitem__``): the data with one zero
    appended, taken through a host-built index.
    """
    m, n = shape
    rows_h, cols_h = to_host(rows), to_host(cols)
    where = np.full(m * n, rows_h.size, dtype=np.int64)
    where[rows_h * n + cols_h] = np.arange(rows_h.size)
    padded = xp.concat([data, xp.zeros((1,), dtype=data.dtype, device=dev)])
    flat = xp.take(padded, xp.asarray(where, device=dev), axis=0)
    return xp.reshape(flat, (m, n))


