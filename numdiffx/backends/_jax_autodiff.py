"""jax autodiff references for the gradient checks: ``jax.vjp``, ``jax.jvp``, ``jax.jacrev``.

Everything is differentiated through the real view (see :mod:`numdiffx.backends.autodiff`):
``fr(*real_inputs)`` rebuilds the complex inputs from their (re, im) pairs and returns the
concatenated real views of the outputs, so jax's own complex conventions never enter:
the checked quantity is the real Jacobian of the real view, as on every other backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Reference"]


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _is_complex(x: Any) -> bool:
    return bool(jnp.iscomplexobj(x))


def rows_of(x: Any) -> int:
    return int(np.prod(np.shape(x))) * (2 if _is_complex(x) else 1)


def real_flat(x: Any) -> Any:
    if _is_complex(x):
        x = jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)
    return jnp.reshape(x, (-1,))


def from_real_flat(r: Any, like: Any) -> Any:
    shape = tuple(np.shape(like))
    if _is_complex(like):
        pairs = jnp.reshape(r, (-1, 2))
        return jnp.reshape(jax.lax.complex(pairs[:, 0], pairs[:, 1]), shape).astype(like.dtype)
    return jnp.reshape(r, shape).astype(like.dtype)


def _host(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


class Reference:
    """jax autodiff (custom_vjp/custom_jvp rules included) as the analytical side."""

    name = "jax"

    def __init__(self, f: Callable[..., Any], args: Sequence[Any], checked: Sequence[int]
                 ) -> None:
        self.f = f
        self.args = list(args)
        self.checked = list(checked)
        self.outputs = _as_tuple(f(*self.args))
        self.grad_problems: list[str] = []

    def differentiable(self, k: int) -> bool:
        o = self.outputs[k]
        return hasattr(o, "dtype") and bool(jnp.issubdtype(o.dtype, jnp.inexact))

    def _fr(self, outputs: Sequence[int]) -> Callable[..., Any]:
        """Real-view function of the checked inputs -> concatenated real views of outputs."""

        def fr(*reals: Any) -> Any:
            args = list(self.args)
            for i, r in zip(self.checked, reals):
                args[i] = from_real_flat(r, self.args[i])
            outs = _as_tuple(self.f(*args))
            pieces = [real_flat(outs[k]) for k in outputs]
            dtype = jnp.result_type(*pieces) if pieces else jnp.float64
            return jnp.concatenate([p.astype(dtype) for p in pieces]) if pieces else (
                jnp.zeros((0,), dtype))

        return fr

    def _reals(self) -> list[Any]:
        return [real_flat(self.args[i]) for i in self.checked]

    def _split(self, flat: np.ndarray, outputs: Sequence[int]) -> dict[int, np.ndarray]:
        out, start = {}, 0
        for k in outputs:
            m = rows_of(self.outputs[k])
            out[k] = flat[start:start + m]
            start += m
        return out

    def vjp(self, cotangents: dict[int, np.ndarray], check_dtypes: bool = False
            ) -> dict[int, np.ndarray | None]:
        ks = list(cotangents)
        y, pullback = jax.vjp(self._fr(ks), *self._reals())
        v = jnp.asarray(np.concatenate([cotangents[k] for k in ks]), dtype=y.dtype)
        grads = pullback(v)
        return {i: _host(g) for i, g in zip(self.checked, grads)}

    def jacobian(self, outputs: Sequence[int], check_dtypes: bool = False
                 ) -> dict[tuple[int, int], np.ndarray | None]:
        reals = self._reals()
        jac = jax.jacrev(self._fr(outputs), argnums=tuple(range(len(reals))))(*reals)
        result: dict[tuple[int, int], np.ndarray | None] = {}
        for pos, i in enumerate(self.checked):
            block = np.asarray(jac[pos], dtype=np.float64).reshape(-1, int(reals[pos].shape[0]))
            for k, rows in self._split(np.arange(block.shape[0]), outputs).items():
                result[(k, i)] = block[rows]
        return result

    def jvp(self, tangents: dict[int, np.ndarray], outputs: Sequence[int]
            ) -> dict[int, np.ndarray]:
        reals = self._reals()
        tans = [jnp.asarray(tangents[i], dtype=r.dtype) for i, r in zip(self.checked, reals)]
        _, t_out = jax.jvp(self._fr(outputs), tuple(reals), tuple(tans))
        return self._split(_host(t_out), outputs)

    def jacobian_forward(self, outputs: Sequence[int]) -> dict[tuple[int, int], np.ndarray]:
        reals = self._reals()
        jac = jax.jacfwd(self._fr(outputs), argnums=tuple(range(len(reals))))(*reals)
        result = {}
        for pos, i in enumerate(self.checked):
            block = np.asarray(jac[pos], dtype=np.float64).reshape(-1, int(reals[pos].shape[0]))
            for k, rows in self._split(np.arange(block.shape[0]), outputs).items():
                result[(k, i)] = block[rows]
        return result

    def first_backward(self, n_inputs: int, checked_inputs: Sequence[int],
                       outputs: Sequence[int]) -> Callable[..., tuple[Any, ...]]:
        """G(*inputs, *grad_outputs) = the vjp of f (jax's own complex convention)."""
        f = self.f

        def first_backward(*args: Any) -> tuple[Any, ...]:
            xs, gos = list(args[:n_inputs]), list(args[n_inputs:])

            def restricted(*d: Any) -> tuple[Any, ...]:
                a = list(xs)
                for i, v in zip(checked_inputs, d):
                    a[i] = v
                outs = _as_tuple(f(*a))
                return tuple(outs[k] for k in outputs)

            _, pullback = jax.vjp(restricted, *[xs[i] for i in checked_inputs])
            cot = tuple(jnp.asarray(g).astype(self.outputs[k].dtype)
                        for g, k in zip(gos, outputs))
            return tuple(pullback(cot))

        return first_backward

    def hvp(self, scalar_output: int, tangents: dict[int, np.ndarray]
            ) -> dict[int, np.ndarray | None]:
        reals = self._reals()
        fr = self._fr([scalar_output])

        def scalar(*r: Any) -> Any:
            return fr(*r)[0]

        tans = tuple(jnp.asarray(tangents[i], dtype=r.dtype) for i, r in zip(self.checked, reals))
        _, hv = jax.jvp(jax.grad(scalar, argnums=tuple(range(len(reals)))), tuple(reals), tans)
        return {i: _host(h) for i, h in zip(self.checked, hv)}

    def backward_ignores_zero_grad_output(self, outputs: Sequence[int]) -> str | None:
        return None

    def undefined_grad_problem(self, outputs: Sequence[int]) -> str | None:
        return None

    def batched_grad_problem(self, outputs: Sequence[int], seed: int) -> str | None:
        """``jax.vmap`` over the pullback against two single pullbacks."""
        fr = self._fr(outputs)
        y, pullback = jax.vjp(fr, *self._reals())
        key = jax.random.PRNGKey(seed)
        cots = jax.random.normal(key, (2, *y.shape), dtype=y.dtype)
        batched = jax.vmap(pullback)(cots)
        for pos, i in enumerate(self.checked):
            single = jnp.stack([pullback(c)[pos] for c in cots])
            if not np.allclose(np.asarray(batched[pos]), np.asarray(single)):
                return (f"the vmapped pullback w.r.t. in[{i}] differs from two single ones "
                        "(check_batched_grad=True)")
        return None

    def batched_forward_problem(self, outputs: Sequence[int], seed: int) -> str | None:
        fr = self._fr(outputs)
        reals = self._reals()
        key = jax.random.PRNGKey(seed)
        for pos, i in enumerate(self.checked):
            def push(t: Any, pos: int = pos) -> Any:
                tans = [jnp.zeros_like(r) for r in reals]
                tans[pos] = t
                return jax.jvp(fr, tuple(reals), tuple(tans))[1]

            ts = jax.random.normal(key, (2, *reals[pos].shape), dtype=reals[pos].dtype)
            if not np.allclose(np.asarray(jax.vmap(push)(ts)),
                               np.asarray(jnp.stack([push(t) for t in ts]))):
                return (f"the vmapped jvp w.r.t. in[{i}] differs from two single ones "
                        "(check_batched_forward_grad=True)")
        return None


# --- jax.test_util.check_grads' contract, for numdiffx.checks.check_grads -------------------
# The argument handling below is jax's own (public_test_util), so that f sees exactly what
# jax's check_grads would pass it: numpy arrays, Python scalars and pytrees stay what they
# are, the random directions come from the same seeded draws. One difference: a jax array
# committed to a device or sharding keeps that placement on every perturbed copy.

_PY_SCALARS = {bool: np.dtype(bool), int: np.dtype(np.int64), float: np.dtype(np.float64),
               complex: np.dtype(np.complex128)}


def flatten(tree: Any) -> tuple[list[Any], list[str], Any]:
    """(leaves, their paths like ``[0]['w']``, treedef) of a pytree."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return [leaf for _, leaf in pairs], [jax.tree_util.keystr(p) for p, _ in pairs], treedef


def unflatten(treedef: Any, leaves: Sequence[Any]) -> Any:
    return jax.tree_util.tree_unflatten(treedef, list(leaves))


def is_python_scalar(x: Any) -> bool:
    return not isinstance(x, np.generic) and isinstance(x, (bool, int, float, complex))


def dtype_of(x: Any) -> np.dtype:
    """jax's ``_dtype``: an array's dtype, a Python scalar's default (float -> float64)."""
    if hasattr(x, "dtype"):
        return np.dtype(x.dtype)
    return _PY_SCALARS.get(type(x)) or np.asarray(x).dtype


def canonical(dtype: Any) -> np.dtype:
    """The dtype jax computes in (float64 -> float32 with x64 off)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.dtype(dtype)))


def x64() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def kind(dtype: Any) -> str:
    """'complex', 'real' (float16/bfloat16/float8 included) or 'other'."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "complex"
    return "real" if jnp.issubdtype(dtype, jnp.floating) else "other"


def rand_like(rng: np.random.RandomState, x: Any) -> Any:
    """jax's ``rand_like``: a standard normal draw of x's shape and dtype."""
    shape, dtype = np.shape(x), dtype_of(x)
    result = np.asarray(rng.randn(*shape), dtype=dtype)
    if kind(dtype) == "complex":
        result = result + dtype.type(1.0j) * np.asarray(rng.randn(*shape), dtype=dtype)
    return result.item() if is_python_scalar(x) else result


def host(x: Any) -> np.ndarray:
    """A host numpy view of an array or scalar (sharded arrays are gathered)."""
    return np.asarray(x)


def shifted(x: Any, direction: Any, step: float) -> Any:
    """``x + step * direction`` computed as jax's check_grads does (in x's dtype, on the
    host), returned as x's kind: a Python scalar, a numpy array, or -- for a jax array
    committed to a device or sharding -- a jax array with x's sharding."""
    dtype = dtype_of(x)
    with np.errstate(all="ignore"):
        delta = np.multiply(direction, np.array(step, dtype=dtype), dtype=dtype)
        value = np.array(host(x) + delta, dtype=dtype)
    if is_python_scalar(x):
        return value.item()
    if isinstance(x, jax.Array) and getattr(x, "committed", False) and not isinstance(
            x, jax.core.Tracer):
        return jax.device_put(value, x.sharding)
    return value


def jvp_of(f: Callable[..., Any], lin: bool = False) -> Callable[..., Any]:
    """``(primals, tangents) -> (primal_out, tangent_out)`` by ``jax.jvp`` or, with
    ``lin``, by ``jax.linearize`` (jax's "lin" mode)."""
    if not lin:
        return lambda primals, tangents: jax.jvp(f, primals, tangents)

    def through_linearize(primals: Any, tangents: Any) -> Any:
        primal_out, f_lin = jax.linearize(f, *primals)
        return primal_out, f_lin(*tangents)

    return through_linearize


def vjp_of(f: Callable[..., Any]) -> Callable[..., Any]:
    """``*args -> (primal_out, pullback)`` by ``jax.vjp``."""
    return lambda *args: jax.vjp(f, *args)


def pullback_of_output(f: Callable[..., Any]) -> Callable[..., Any]:
    """``*args -> vjp(f at args)(f(args))``: the function jax's check_grads checks next
    in reverse mode at order > 1."""

    def f_vjp(*args: Any) -> Any:
        out, pullback = jax.vjp(f, *args)
        return pullback(out)

    return f_vjp


def conj_like(x: Any) -> Any:
    """jax's ``conj`` on one leaf, keeping a Python scalar a Python scalar."""
    result = np.array(np.conj(x), dtype=dtype_of(x))
    return result.item() if is_python_scalar(x) else result


def finfo_eps(dtype: Any) -> float:
    """Machine epsilon of a floating or complex dtype (bfloat16 and float8 included)."""
    return float(jnp.finfo(dtype).eps)
