"""torch adapter (CPU and CUDA): ``torch.func.vmap``, detached copies, no autograd graph.

``evaluation="auto"`` is ``"vmap"``: the per-sample f is mapped with
``torch.func.vmap`` over the perturbed copies, one call per chunk. If vmap cannot trace
f (f calls ``.item()``, converts to numpy, branches on values, uses in-place ops vmap
refuses), the first call fails with torch's error; "auto" then falls back to
``"loop"`` (one call per point, any f) for the whole computation. The rule: "auto"
means vmap when f is vmap-traceable, loop otherwise; an explicit ``evaluation="vmap"``
never falls back and raises the original error.

The input is ``x.detach().clone()`` (a ``requires_grad`` input works) and every call
of f runs under ``torch.no_grad()``: no autograd graph is built over the batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from numdiffx.backends import _NOTHING, Backend, HostBridgeRefused

#: dtypes whose values numpy holds bit for bit
_HOST_DTYPES = (torch.float64, torch.float32)


def _host_view(t: Any) -> Any:
    """The numpy view of a CPU tensor's memory, or None (a conjugate or negative view)."""
    try:
        return t.numpy() if not t.requires_grad else t.detach().numpy()
    except (RuntimeError, TypeError):
        return None


class _Placeholder:
    """Where a host bridge puts back one of the caller's own tensors (not an array)."""


class TorchBackend(Backend):
    name = "torch"
    default_evaluation = "vmap"
    auto_fallback = "loop"
    @staticmethod
    def index_add(a: Any, index: tuple[Any, ...], v: Any) -> Any:
        # one kernel (accumulate): a[index] += v gathers, adds and scatters
        return a.index_put_(index, v.to(a.dtype), accumulate=True)

    @staticmethod
    def fresh_rows(row: Any, count: int) -> Any:
        # clone, not contiguous(): for one row the expanded view is already contiguous,
        # and contiguous() would hand back x itself for the in-place adds
        return row.expand(count, row.shape[0]).clone(memory_format=torch.contiguous_format)

    @staticmethod
    def repeated(a: Any, count: int, xp: Any) -> Any:
        return a.expand(count, *a.shape)  # broadcast_to's view, without the namespace

    def to_host(self, a: Any) -> Any:
        return a.detach().cpu().numpy()

    def vmap(self, fun: Callable[..., Any], in_axes: tuple[int | None, ...]) -> (
            Callable[..., Any] | None):
        return torch.func.vmap(fun, in_dims=in_axes)

    def prepare(self, x: Any, xp: Any) -> Any:
        return x.detach().clone()

    def host_bridge(self, f: Callable[..., Any], args: Sequence[Any], a: int) -> (
            tuple[Callable[..., Any], tuple[Any, ...], Any] | None):
        x = args[a]
        if (type(x) is not torch.Tensor and type(x) is not torch.nn.Parameter) or (
                not x.is_cpu or x.dtype not in _HOST_DTYPES):
            return None  # a subclass keeps its own type: f sees the same batches as before
        x_host = _host_view(x)
        if x_host is None:
            return None
        # the other arguments stay the caller's tensors: f sees them as before, repeated
        # over the batch as the batched mode's contract says
        others = [(i, v) for i, v in enumerate(args) if i != a and isinstance(v, torch.Tensor)]
        host_args = tuple(_Placeholder() if i != a and isinstance(v, torch.Tensor) else v
                          for i, v in enumerate(args))
        host_args = host_args[:a] + (x_host,) + host_args[a + 1:]

        def g(*call: Any) -> Any:
            batch = torch.from_numpy(call[a])
            rows = batch.shape[0]
            full = list(call)
            full[a] = batch
            for i, v in others:
                full[i] = self.repeated(v, rows, None)
            out = f(*full)
            if type(out) is not torch.Tensor or not out.is_cpu or out.dtype not in _HOST_DTYPES:
                raise HostBridgeRefused  # a list, a scalar, another dtype or device
            host = _host_view(out)
            if host is None:
                raise HostBridgeRefused
            return host

        return g, host_args, x_host

    def from_host(self, a: Any) -> Any:
        return torch.from_numpy(a)

    def unlinked(self, x: Any) -> Any:
        return x.detach() if x.requires_grad else x  # a leaf without grad: no graph to cut

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        # the object itself, no generator around it; nothing where grad is already off
        # (a caller's no_grad around several calls: each entry costs ~2 us)
        return torch.no_grad() if torch.is_grad_enabled() else _NOTHING

    def synchronize(self, x: Any) -> None:
        if getattr(x, "is_cuda", False):
            torch.cuda.synchronize(x.device)

    def to_sparse(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  xp: Any) -> Any:
        """A coalesced sparse COO tensor on the data's device."""
        indices = torch.stack([rows, cols])
        return torch.sparse_coo_tensor(indices, data, size=shape,
                                       check_invariants=True).coalesce()


    def sparse_from_host(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int]) -> Any:
        import numpy as np

        return self.to_sparse(torch.as_tensor(np.asarray(rows)), torch.as_tensor(np.asarray(cols)),
                              torch.as_tensor(np.asarray(data)), shape, None)


BACKEND = TorchBackend()
