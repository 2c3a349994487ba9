"""numpy adapter: numpy has no vmap, so "auto" evaluation loops (or use "batched")."""

from __future__ import annotations

from typing import Any

import numpy as np

from numdiffx.backends import Backend, _add_in_place, _fresh_rows


class NumpyBackend(Backend):
    name = "numpy"
    index_add = staticmethod(_add_in_place)
    fresh_rows = staticmethod(_fresh_rows)

    @staticmethod
    def repeated(a: Any, count: int, xp: Any) -> Any:
        # a contiguous ndarray: the view built directly (0.7 us against np.broadcast_to's
        # 2.5 us, which goes through Python), read-only as broadcast_to's
        if type(a) is np.ndarray and a.flags.c_contiguous:
            view = np.ndarray((count, *a.shape), a.dtype, a, 0, (0, *a.strides))
            view.flags.writeable = False
            return view
        return xp.broadcast_to(a, (count, *a.shape))

    def to_sparse(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  xp: Any) -> Any:
        """``scipy.sparse.csr_array`` when scipy is installed, else None (numdiffx then
        returns ``nd.SparseJacobian``, which needs numpy alone)."""
        try:
            import scipy.sparse
        except ImportError:  # scipy is optional: fall back to the neutral container
            return None
        return scipy.sparse.csr_array((data, (rows, cols)), shape=shape)


    def sparse_from_host(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int]) -> Any:
        """``scipy.sparse.csr_array`` (needs scipy)."""
        try:
            import scipy.sparse
        except ImportError:
            raise ImportError("a scipy sparse matrix needs scipy: pip install scipy (toarray() "
                              "and J @ v need numpy only).") from None
        return scipy.sparse.csr_array((data, (rows, cols)), shape=shape)


BACKEND = NumpyBackend()
