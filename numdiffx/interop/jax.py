"""A black-box numpy function as a ``jax.custom_jvp`` function with finite-difference rules.

Reached as ``nd.jax`` after ``import numdiffx as nd``; importing it imports jax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from numdiffx._core.api import jacobian, jvp

__all__ = ["fd_function"]

JVP_RULES = ("jacobian", "directional")


def fd_function(f: Callable[..., Any], *, result_shape: Any = None, method: object = "central",
                step: object = None, sparsity: object = None, evaluation: str = "loop",
                chunk_size: int | None = None, executor: object = None,
                jvp_rule: str = "jacobian") -> Callable[[Any], Any]:
    """Wrap a black-box numpy function into a jax function with finite-difference rules.

    ``f`` takes one numpy array and returns one numpy array. The returned function
    takes a jax array ``x``, calls f on the host through ``jax.pure_callback`` and is a
    ``jax.custom_jvp`` whose rule comes from numdiffx:

    - ``jvp_rule="jacobian"`` (default): the tangent is ``J(x) @ t`` with ``J`` from
      ``nd.jacobian(f, x)`` in a ``pure_callback``. The rule is linear in ``t`` through
      jax operations, so jax transposes it: ``jax.grad``, ``jax.vjp``, ``jax.jacrev``,
      ``jax.jvp``, ``jax.jacfwd``, ``jax.jit`` and ``jax.vmap`` all work. Cost: one
      Jacobian (``2 * x.size`` calls of f for central, or 2 per colour with
      ``sparsity=``) per linearisation; ``jacfwd``/``jacrev`` reuse it for every column.
    - ``jvp_rule="directional"``: the tangent is ONE directional difference
      ``nd.jvp(f, x, t)`` (2 calls of f for central): cheapest for ``jax.jvp``, but a
      callback of ``t`` cannot be transposed, so reverse mode (``grad``) raises.

    Derivatives are first order (the Jacobian callback is not itself differentiable).
    Under ``vmap`` the callbacks run sequentially over the batch
    (``vmap_method="sequential"``): the black box always sees one unbatched x.

    Parameters
    ----------
    f : callable
        ``f(x: np.ndarray) -> np.ndarray``; runs on the host.
    result_shape : jax.ShapeDtypeStruct, optional
        Shape and dtype of ``f(x)``. Default: found once per input shape and dtype by
        calling f -- on x itself when x is concrete, else (under ``jit``) on
        ``ones(x.shape)``; pass it if f is not defined there.
    method, step, sparsity, evaluation, chunk_size, executor
        As in :func:`numdiffx.jacobian` (``evaluation`` defaults to ``"loop"``).
    jvp_rule : {"jacobian", "directional"}
        See above.

    Returns
    -------
    callable
        ``fn(x: jax.Array) -> jax.Array``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np, numdiffx as nd
    >>> fn = nd.jax.fd_function(lambda a: np.sin(a) * a)  # a numpy black box
    >>> x = jnp.array([0.5, 1.0, 2.0])
    >>> g = jax.jit(jax.grad(lambda x: fn(x).sum()))(x)
    >>> float(jnp.max(jnp.abs(g - (jnp.sin(x) + x * jnp.cos(x))))) < 1e-3
    True
    """
    if not callable(f):
        raise TypeError(f"f must be callable; got a {type(f).__name__}.")
    if jvp_rule not in JVP_RULES:
        raise ValueError(f"jvp_rule must be one of {JVP_RULES}; got {jvp_rule!r}.")
    if result_shape is not None and not (hasattr(result_shape, "shape")
                                         and hasattr(result_shape, "dtype")):
        raise TypeError("result_shape must be a jax.ShapeDtypeStruct (shape and dtype of f(x)); "
                        f"got a {type(result_shape).__name__}.")
    options: dict[str, Any] = dict(method=method, step=step, evaluation=evaluation,
                                   executor=executor)
    jac_options = dict(options, chunk_size=chunk_size)
    if sparsity is not None:
        jac_options.update(sparsity=sparsity, sparse_output=False)
    known: dict[tuple[Any, ...], Any] = {}

    def out_struct(x: Any) -> Any:
        if result_shape is not None:
            return result_shape
        key = (tuple(x.shape), np.dtype(x.dtype))
        if key not in known:
            probe = np.ones(key[0], key[1]) if isinstance(x, jax.core.Tracer) else np.array(x)
            y = np.asarray(f(probe))
            known[key] = jax.ShapeDtypeStruct(y.shape, jax.dtypes.canonicalize_dtype(y.dtype))
        return known[key]

    def host(fun: Callable[..., Any], dtype: Any) -> Callable[..., Any]:
        """A callback: private numpy copies in, ``dtype`` out (the declared result)."""
        return lambda *a: np.asarray(fun(*(np.array(ai) for ai in a)), dtype=dtype)

    @jax.custom_jvp
    def fn(x: Any) -> Any:
        s = out_struct(x)
        return jax.pure_callback(host(f, s.dtype), s, x, vmap_method="sequential")

    @fn.defjvp
    def fn_jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        (x,), (t,) = primals, tangents
        s = out_struct(x)
        y = fn(x)
        if jvp_rule == "directional":
            tangent = jax.pure_callback(host(lambda a, v: jvp(f, a, v, **options)[1], s.dtype),
                                        s, x, t, vmap_method="sequential")
            return y, tangent
        js = jax.ShapeDtypeStruct((*s.shape, *x.shape), s.dtype)
        J = jax.pure_callback(host(lambda a: jacobian(f, a, **jac_options), s.dtype), js, x,
                              vmap_method="sequential")
        return y, jnp.tensordot(J, t.astype(s.dtype), axes=t.ndim)

    fn.__doc__ = f"{getattr(f, '__name__', 'f')} with finite-difference derivative rules."
    return fn  # type: ignore[no-any-return]
