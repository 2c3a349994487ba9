"""jax adapter: ``jax.vmap``; works on concrete arrays and under ``jax.jit``.

``evaluation="auto"`` is ``"vmap"`` (one mapped call per chunk). jax arrays are
immutable, so ``prepare`` returns the array itself (nothing can mutate it) and there
is no graph to detach. dtypes follow ``jax_enable_x64``: float64 inputs stay float64
when it is on; without it jax itself has no float64. Under ``jax.jit`` everything the
engine does has shapes known at trace time, so ``jax.jit(lambda x: nd.jacobian(f, x))``
traces to one fixed-shape program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from numdiffx.backends import Backend


class JaxBackend(Backend):
    name = "jax"
    default_evaluation = "vmap"
    auto_fallback = "loop"

    def vmap(self, fun: Callable[..., Any], in_axes: tuple[int | None, ...]) -> (
            Callable[..., Any] | None):
        return jax.vmap(fun, in_axes=in_axes)

    def prepare(self, x: Any, xp: Any) -> Any:
        return x  # immutable: a private copy already

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
