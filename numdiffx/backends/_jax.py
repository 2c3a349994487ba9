"""jax adapter: ``jax.vmap``; works on concrete arrays and under ``jax.jit``.

``evaluation="auto"`` is ``"vmap"`` (one mapped call per chunk). jax arrays are
immutable, so ``prepare`` returns the array itself (nothing can mutate it) and there
is no graph to detach. dtypes follow ``jax_enable_x64``: float64 inputs stay float64
when it is on; without it jax itself has no float64. Under ``jax.jit`` everything the
engine does has shapes known at trace time, so ``jax.jit(lambda x: nd.jacobian(f, x))``
traces to one fixed-shape program.

Eagerly every jnp operation is a dispatch (tens of us): the fast lane's plain call on a
CPU array runs numdiffx's own steps, points, checks and differences in numpy on the
array's host buffer (``host_bridge``: the same IEEE operations, the same bits; the one
exception, division, made by XLA as the engine's jax arrays make it), f and ``jax.vmap``
of f on jax arrays: a few dispatches besides f's own instead of ~25.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from numdiffx.backends import Backend, HostBridgeRefused
from numdiffx.backends._numpy import NumpyBackend

_HOST_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


class _Placeholder:
    """Where a host bridge puts back one of the caller's own arrays."""


class _HostCall:
    """f seen from the host: numpy points in, f (and ``jax.vmap`` of f) on jax arrays of
    them, f's output back as numpy. Anything but a CPU jax array of x's dtype is refused
    (:class:`HostBridgeRefused`): the engine then computes the call."""

    def __init__(self, f: Callable[..., Any], args: Sequence[Any], a: int) -> None:
        x = args[a]
        self.f, self.a, self.dtype = f, a, x.dtype
        self.array_type, self.ndim = type(x), x.ndim
        self.others = [(i, v) for i, v in enumerate(args)
                       if i != a and isinstance(v, jax.Array)]
        self.host_backend = _HOST

    def _device(self, call: Sequence[Any], repeat: int | None) -> list[Any]:
        import jax.numpy as jnp

        full = list(call)
        full[self.a] = jnp.asarray(call[self.a])
        for i, v in self.others:
            full[i] = v if repeat is None else jnp.broadcast_to(v, (repeat, *v.shape))
        return full

    def _back(self, out: Any) -> Any:
        if (type(out) is not self.array_type or out.dtype != self.dtype
                or next(iter(out.devices())).platform != "cpu"):
            raise HostBridgeRefused
        return np.asarray(out)

    def __call__(self, *call: Any) -> Any:
        batch = call[self.a]
        rows = batch.shape[0] if batch.ndim > self.ndim else None  # batched: repeat others
        return self._back(self.f(*self._device(call, rows)))

    def mapped(self, in_axes: tuple[int | None, ...]) -> Callable[..., Any]:
        fun = jax.vmap(self.f, in_axes=in_axes)
        return lambda *call: self._back(fun(*self._device(call, None)))


class _JaxHost(NumpyBackend):
    """numpy, as the jax bridge's host: jax's evaluation modes, vmap through jax."""

    name = "numpy"
    default_evaluation = "vmap"
    auto_fallback = "loop"

    def vmap(self, fun: Callable[..., Any], in_axes: tuple[int | None, ...]) -> (
            Callable[..., Any] | None):
        return fun.mapped(in_axes) if isinstance(fun, _HostCall) else None

    @staticmethod
    def divide(a: Any, b: Any) -> Any:
        """XLA's quotient (on the CPU it is not always the correctly rounded one numpy
        gives: ~1 in 4 differ in the last bit), as the engine's jax arrays divide."""
        import jax.numpy as jnp

        return np.asarray(jnp.asarray(a) / jnp.asarray(b))


_HOST = _JaxHost()


class JaxBackend(Backend):
    name = "jax"
    default_evaluation = "vmap"
    auto_fallback = "loop"

    def vmap(self, fun: Callable[..., Any], in_axes: tuple[int | None, ...]) -> (
            Callable[..., Any] | None):
        return jax.vmap(fun, in_axes=in_axes)

    def prepare(self, x: Any, xp: Any) -> Any:
        return x  # immutable: a private copy already

    #: every eager jnp operation is a dispatch (~20-60 us): the fast lane runs numdiffx's
    #: own arithmetic in numpy on the CPU (the same IEEE operations: the same bits)
    eager_dispatch = True

    def host_bridge(self, f: Callable[..., Any], args: Sequence[Any], a: int) -> (
            tuple[Callable[..., Any], tuple[Any, ...], Any] | None):
        x = args[a]
        if (not isinstance(x, jax.Array) or self.is_traced(x)
                or getattr(x, "committed", True)  # placed by the caller: the engine keeps it
                or np.dtype(x.dtype) not in _HOST_DTYPES
                or any(d.platform != "cpu" for d in x.devices())):
            return None
        x_host = np.asarray(x)  # the CPU buffer itself, read-only: never written
        g = _HostCall(f, args, a)
        host_args = tuple(_Placeholder() if i != a and isinstance(v, jax.Array) else v
                          for i, v in enumerate(args))
        return g, host_args[:a] + (x_host,) + host_args[a + 1:], x_host

    def from_host(self, a: Any) -> Any:
        import jax.numpy as jnp

        return jnp.asarray(a)

    def register_result_type(self, cls: type, data: tuple[str, ...],
                             static: tuple[str, ...]) -> None:
        """A pytree: a DiffResult can be returned from jax.jit (nfev is static)."""
        try:
            jax.tree_util.register_dataclass(cls, data_fields=list(data),
                                             meta_fields=list(static))
        except ValueError:  # registered already
            pass

    def tree_node(self, obj: Any) -> tuple[list[str], list[Any], Callable[[list[Any]], Any]] | (
            None):
        """One level of a registered pytree node (any ``register_pytree_node`` /
        ``register_dataclass`` class, equinox modules, flax structs)."""
        if obj is None or not jax.tree_util.is_tree_node(obj):
            return None
        flat, treedef = jax.tree_util.tree_flatten_with_path(obj, is_leaf=lambda y: y is not obj)
        keys = ["".join(str(k) for k in path) for path, _ in flat]
        return keys, [leaf for _, leaf in flat], treedef.unflatten  # type: ignore[attr-defined]

    def is_traced(self, a: Any) -> bool:
        return isinstance(a, jax.core.Tracer)

    def synchronize(self, x: Any) -> None:
        if hasattr(x, "block_until_ready"):
            x.block_until_ready()

    def to_sparse(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int],
                  xp: Any) -> Any:
        """A ``jax.experimental.sparse.BCOO`` matrix (works under jit)."""
        import jax.numpy as jnp
        from jax.experimental import sparse

        return sparse.BCOO((data, jnp.stack([rows, cols], axis=1)), shape=shape)


    def sparse_from_host(self, rows: Any, cols: Any, data: Any, shape: tuple[int, int]) -> Any:
        import jax.numpy as jnp

        return self.to_sparse(jnp.asarray(rows), jnp.asarray(cols), jnp.asarray(data), shape,
                              jnp)


BACKEND = JaxBackend()
