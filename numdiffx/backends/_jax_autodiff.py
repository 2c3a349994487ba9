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
        return jnp.reshape(pairs[:, 0] + 1j * pairs[:, 1], shape).astype(like.dtype)
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
