"""Backend adapters: only what the array API standard lacks, loaded lazily.

Detecting a backend never imports it: the array's type is checked by module name.
An adapter provides ``vmap`` (or None), ``prepare`` (detach from autodiff and copy),
``no_grad`` (a context for evaluating f without building a graph), ``synchronize`` and
the ``default_evaluation`` mode. Libraries without an adapter use the generic one.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Backend", "backend_for", "register_backend"]


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

    @contextlib.contextmanager
    def no_grad(self) -> Iterator[None]:
        yield

    def synchronize(self, x: Any) -> None:
        """Block until the device work producing ``x`` has finished (for timing)."""

    def to_sparse(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  xp: Any) -> Any:
        """The library's sparse matrix of shape ``shape`` (COO input, row-major sorted)."""
        from numdiffx._core.sparse import SparseJacobian

        return SparseJacobian(rows, cols, data, shape)


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
    if root == "jaxlib":
        root = "jax"
    if root not in _LOADED:
        path = _ADAPTERS.get(root)
        _LOADED[root] = importlib.import_module(path).BACKEND if path else Backend()
    return _LOADED[root]
