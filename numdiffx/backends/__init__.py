"""Backend adapters: only what the array API standard lacks, loaded lazily.

Detecting a backend never imports it: the array's type is checked by module name.
An adapter provides ``vmap`` (or None), ``prepare`` (detach from autodiff and copy),
``no_grad`` (a context for evaluating f without building a graph), ``synchronize``,
``to_host`` (the one device-to-host copy), ``is_traced`` (jit tracers), ``index_add``
(indexed update, or None), ``to_sparse`` (the library's sparse type, or None) and the
``default_evaluation`` mode. This package is the ONLY code that knows a library by name;
``numdiffx._core`` asks it. Libraries without an adapter use the generic one.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Backend", "HostBridgeRefused", "adapter", "backend_for", "register_backend",
           "register_result_type", "to_host", "tree_node"]


_NOTHING = contextlib.nullcontext()  # reusable and reentrant: one for every call


class HostBridgeRefused(Exception):
    """f's output cannot be carried to host numpy unchanged (see ``host_bridge``)."""


class Backend:
    """The generic adapter: pure array API, no vmap, nothing to detach or synchronise."""

    name = "generic"
    #: Evaluation mode used for ``evaluation="auto"``.
    default_evaluation = "loop"
    #: Mode "auto" falls back to when the default mode cannot trace f (None: no fallback).
    auto_fallback: str | None = None

    def vmap(self, fun: Callable[..., Any], in_axes: tuple[int | None, ...]) -> (
            Callable[..., Any] | None):
        """A function mapping ``fun`` over axis 0 of the arguments where in_axes is 0."""
        return None

    def prepare(self, x: Any, xp: Any) -> Any:
        """A private copy of ``x``, detached from any autodiff graph."""
        return xp.asarray(x, copy=True)

    def host_bridge(self, f: Callable[..., Any], args: Sequence[Any], a: int) -> (
            tuple[Callable[..., Any], tuple[Any, ...], Any] | None):
        """For a batched f of a library whose small arrays cost more per operation than
        numpy's (torch's dispatcher: ~2 us against ~0.5 us), a view of the computation in
        host numpy: ``(g, host_args, x_host)`` where ``g(*host_args)`` with a numpy batch
        at position ``a`` calls f on the library's zero-copy view of it (the other
        arguments the caller's own, broadcast over the batch) and returns f's output as a
        numpy view; ``x_host`` is args[a] as a numpy view. ``g`` raises
        :class:`HostBridgeRefused` for an output it does not carry unchanged. None where
        the library has no such view (numpy itself, a GPU array)."""
        return None

    def from_host(self, a: Any) -> Any:
        """The library's zero-copy view of a host numpy array (see ``host_bridge``)."""
        return a

    @staticmethod
    def repeated(a: Any, count: int, xp: Any) -> Any:
        """A read-only view of ``a`` repeated ``count`` times along a new leading axis
        (``broadcast_to``): a batched f's other arguments."""
        return xp.broadcast_to(a, (count, *a.shape))

    def unlinked(self, x: Any) -> Any:
        """``x`` itself, detached from any autodiff graph, not copied: for a caller that
        only reads it (and hands f copies)."""
        return x

    @staticmethod
    def divide(a: Any, b: Any) -> Any:
        """``a / b`` as the library itself divides (a host bridge's numpy arrays: as the
        library it stands in for; XLA's division is not numpy's, see ``_jax``)."""
        return a / b

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        """A context in which f runs without building an autodiff graph (here: nothing)."""
        return _NOTHING

    def synchronize(self, x: Any) -> None:
        """Block until the device work producing ``x`` has finished (for timing)."""

    def to_host(self, a: Any) -> Any:
        """A numpy copy of ``a`` on the host (the one device-to-host helper): ``a`` on
        another device crosses through DLPack (``from_dlpack(a, device="cpu")``)."""
        try:
            return np.asarray(a)
        except (RuntimeError, TypeError, ValueError, BufferError):  # on another device
            return np.from_dlpack(a, device="cpu", copy=True)

    def is_traced(self, a: Any) -> bool:
        """Whether ``a`` is an abstract value being traced (no data on the host)."""
        return False

    #: ``index_add(a, (rows, cols), v)``: ``a[rows, cols] += v`` on an array numdiffx owns,
    #: returning the result; None where the namespace has no indexed update (jax outside
    #: jit would copy the whole batch per call; numdiffx then builds unit matrices).
    index_add: Callable[[Any, tuple[Any, ...], Any], Any] | None = None
    #: ``fresh_rows(row, count)``: a new writable (count, n) array of copies of ``row``
    #: (used with ``index_add``)
    fresh_rows: Callable[[Any, int], Any] | None = None
    #: every eager operation is a dispatch costing tens of us (jax outside jit): the fast
    #: lane then runs numdiffx's arithmetic on the host (``host_bridge``) or not at all
    eager_dispatch: bool = False

    def to_sparse(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  xp: Any) -> Any:
        """The library's sparse matrix of shape ``shape`` (COO input, row-major sorted),
        or None where it has none (numdiffx then returns ``nd.SparseJacobian``)."""
        return None

    def register_result_type(self, cls: type, data: tuple[str, ...],
                             static: tuple[str, ...]) -> None:
        """Make a numdiffx result class known to the library's transformations (none)."""

    def sparse_from_host(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int]) -> Any:
        """The library's sparse matrix from host (numpy) COO arrays."""
        raise ImportError(f"no sparse matrix type is known for {self.name} arrays.")

    def tree_node(self, obj: Any) -> tuple[list[str], list[Any], Callable[[list[Any]], Any]] | (
            None):
        """``obj`` as a node of the library's own tree registry: (path steps such as
        ``".w"``, children, rebuild from children), or None where it is not one."""
        return None


def _fresh_rows(row: Any, count: int) -> Any:
    """A new C-ordered, writable (count, n) array whose rows are copies of ``row``.

    numpy, cupy: ``empty`` + assignment (copying a broadcast view keeps its 'F' layout).
    numpy directly: the namespace lookups cost more than the copy at small n."""
    if type(row) is np.ndarray:
        out = np.empty((count, row.shape[0]), dtype=row.dtype)
    else:
        from array_api_compat import array_namespace, device

        out = array_namespace(row).empty((count, row.shape[0]), dtype=row.dtype,
                                         device=device(row))
    out[...] = row
    return out


def _add_in_place(a: Any, index: tuple[Any, ...], v: Any) -> Any:
    """``a[index] += v`` for libraries with mutable arrays (numpy, cupy, torch)."""
    a[index] += v
    return a


# root module name of the array type -> module of its adapter (imported on first use)
_ADAPTERS: dict[str, str] = {"numpy": "numdiffx.backends._numpy",
                             "torch": "numdiffx.backends._torch",
                             "jax": "numdiffx.backends._jax",
                             "cupy": "numdiffx.backends._cupy"}
_LOADED: dict[str, Backend] = {}


def register_backend(root_module: str, adapter_module: str) -> None:
    """Register the adapter module (exposing ``BACKEND``) for arrays of ``root_module``."""
    _ADAPTERS[root_module] = adapter_module
    _LOADED.pop(root_module, None)


def backend_for(x: Any) -> Backend:
    """The adapter for the library that owns array ``x`` (by type module, no import)."""
    root = type(x).__module__.split(".", 1)[0]
    return adapter("jax" if root == "jaxlib" else root)


def adapter(root: str) -> Backend:
    """The adapter registered for the library named ``root`` (the generic one if none)."""
    found = _LOADED.get(root)
    if found is None:
        path = _ADAPTERS.get(root)
        found = _LOADED[root] = importlib.import_module(path).BACKEND if path else Backend()
        for cls, data, static in RESULT_TYPES:
            found.register_result_type(cls, data, static)
    return found


#: libraries with a tree registry of their own, asked (once loaded by the user) about
#: objects that are not dicts, lists, tuples or dataclasses
_TREE_REGISTRIES = ("jax",)


def tree_node(obj: Any) -> tuple[list[str], list[Any], Callable[[list[Any]], Any]] | None:
    """A registered tree node of a library already imported (jax pytrees): see
    :meth:`Backend.tree_node`. Never imports a library."""
    for root in _TREE_REGISTRIES:
        if root in sys.modules:
            found = adapter(root).tree_node(obj)
            if found is not None:
                return found
    return None


def to_host(a: Any) -> Any:
    """A numpy copy of an array of any backend on the host: the ONE device-to-host helper
    (numpy arrays and Python scalars pass through)."""
    import numpy as np

    if isinstance(a, np.ndarray) or np.isscalar(a):
        return np.asarray(a)
    return np.asarray(backend_for(a).to_host(a))


#: result types with array fields: (class, array fields, static fields). A library whose
#: transformations need to know them (jax's pytrees: a DiffResult returned from jax.jit)
#: registers them when its adapter loads.
RESULT_TYPES: list[tuple[type, tuple[str, ...], tuple[str, ...]]] = []


def register_result_type(cls: type, data: tuple[str, ...], static: tuple[str, ...]) -> None:
    """Declare a numdiffx result class to the adapters (now, and to those loaded later)."""
    RESULT_TYPES.append((cls, data, static))
    for loaded in _LOADED.values():
        loaded.register_result_type(cls, data, static)
