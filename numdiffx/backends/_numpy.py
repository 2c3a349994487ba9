"""numpy adapter: numpy has no vmap, so "auto" evaluation loops (or use "batched")."""

from __future__ import annotations

from typing import Any

from numdiffx.backends import Backend


class NumpyBackend(Backend):
    name = "numpy"

    def to_sparse(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  xp: Any) -> Any:
        """``scipy.sparse.csr_array`` when scipy is installed, else ``nd.SparseJacobian``."""
        try:
            import scipy.sparse
        except ImportError:  # scipy is optional: fall back to the neutral container
            return super().to_sparse(rows, cols, data, shape, xp)
        return scipy.sparse.csr_array((data, (rows, cols)), shape=shape)


BACKEND = NumpyBackend()
