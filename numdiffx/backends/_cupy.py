"""cupy adapter: cupy arrays in, cupy arrays out, all work on the GPU.

cupy has no vmap: ``evaluation="auto"`` loops (one call per point);
``evaluation="batched"`` (f takes a leading batch axis) makes one call per chunk and is
the fast path. cupy is imported only when a cupy array is met.
"""

from __future__ import annotations

from typing import Any

from numdiffx.backends import Backend, _add_in_place, _fresh_rows


class CupyBackend(Backend):
    name = "cupy"
    default_evaluation = "loop"
    index_add = staticmethod(_add_in_place)
    fresh_rows = staticmethod(_fresh_rows)

    def to_host(self, a: Any) -> Any:
        return a.get()

    def synchronize(self, x: Any) -> None:
        import cupy

        cupy.cuda.get_current_stream().synchronize()

    def to_sparse(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  xp: Any) -> Any:
        """A ``cupyx.scipy.sparse.csr_matrix`` on the GPU."""
        import cupyx.scipy.sparse

        return cupyx.scipy.sparse.coo_matrix((data, (rows, cols)), shape=shape).tocsr()


BACKEND = CupyBackend()
