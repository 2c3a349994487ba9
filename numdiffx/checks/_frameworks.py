"""What the checks need from each framework: detection, private copies, autodiff.

Nothing here imports torch or jax at module level; each function imports the library
only when it is handed that library's arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

__all__ = ["as_numpy", "framework_of", "is_float", "private_copy"]


def framework_of(x: Any) -> str:
    """'torch', 'jax' or 'numpy'/other root module name of an array (no import)."""
    root = type(x).__module__.split(".", 1)[0]
    return "jax" if root == "jaxlib" else root


def is_float(x: Any) -> bool:
    """Whether ``x`` is a real or complex floating array (a differentiable one)."""
    try:
        xp = array_namespace(x)
    except TypeError:
        return False
    return bool(xp.isdtype(x.dtype, ("real floating", "complex floating")))


def as_numpy(x: Any) -> np.ndarray:
    """A host numpy copy of any array (torch tensors are detached first)."""
    if framework_of(x) == "torch":
        return np.array(x.detach().cpu().numpy(), copy=True)
    if hasattr(x, "get") and framework_of(x) == "cupy":  # pragma: no cover - needs a GPU
        return np.asarray(x.get())
    return np.array(x, copy=True)


def private_copy(x: Any) -> Any:
    """A copy of ``x`` detached from any autodiff graph; the user's array stays untouched."""
    fw = framework_of(x)
    if fw == "torch":
        return x.detach().clone()
    if fw == "jax":
        return x  # immutable
    try:
        xp = array_namespace(x)
    except TypeError:
        return x
    return xp.asarray(x, copy=True)


def no_grad_call(fun: Callable[..., Any], fw: str) -> Callable[..., Any]:
    """``fun`` evaluated without building an autodiff graph (torch: under no_grad)."""
    if fw != "torch":
        return fun
    import torch

    def call(*args: Any) -> Any:
        with torch.no_grad():
            return fun(*args)

    return call


def outputs_tuple(out: Any) -> tuple[tuple[Any, ...], bool]:
    """(outputs as a tuple, whether f returned a single array)."""
    if isinstance(out, (tuple, list)):
        return tuple(out), False
    return (out,), True


# ---------------------------------------------------------------------------------------
# analytical Jacobians and VJPs
# ---------------------------------------------------------------------------------------
def torch_jacobians(f: Callable[..., Any], inputs: Sequence[Any], diff: Sequence[int],
                    float_outputs: Sequence[int]
                    ) -> tuple[dict[tuple[int, int], np.ndarray | None], tuple[Any, ...]]:
    """({(k, i): J (M_k, n_i) or None where autograd has no path}, outputs of f).

    One backward per output element.

    One ``torch.autograd.grad`` call per output element (as torch's own slow gradcheck),
    so any custom ``torch.autograd.Function`` works, vmap support or not.
    """
    import torch

    xs = [x.detach().clone().requires_grad_(i in diff) for i, x in enumerate(inputs)]
    with torch.enable_grad():
        outs, _ = outputs_tuple(f(*xs))
    result: dict[tuple[int, int], np.ndarray | None] = {}
    targets = [xs[i] for i in diff]
    for k in float_outputs:
        out = outs[k]
        flat = out.reshape(-1)
        rows: dict[int, list[np.ndarray | None]] = {i: [] for i in diff}
        for m in range(flat.shape[0]):
            if not out.requires_grad:
                grads: Sequence[Any] = [None] * len(diff)
            else:
                grads = torch.autograd.grad(flat[m], targets, retain_graph=True,
                                            allow_unused=True)
            for i, g in zip(diff, grads):
                rows[i].append(None if g is None else as_numpy(g).reshape(-1))
        for i in diff:
            n_i = int(np.prod(inputs[i].shape))
            if all(r is None for r in rows[i]) and rows[i]:
                result[(k, i)] = None
            else:
                result[(k, i)] = np.stack([np.zeros(n_i) if r is None else r for r in rows[i]]
                                          ).reshape(-1, n_i) if rows[i] else np.zeros((0, n_i))
    return result, outs


def torch_vjp(f: Callable[..., Any], inputs: Sequence[Any], diff: Sequence[int],
              float_outputs: Sequence[int], v: dict[int, np.ndarray]
              ) -> tuple[dict[int, np.ndarray], tuple[Any, ...]]:
    """({i: v^T J_i} for the differentiated inputs from ONE backward call, outputs)."""
    import torch

    xs = [x.detach().clone().requires_grad_(i in diff) for i, x in enumerate(inputs)]
    with torch.enable_grad():
        outs, _ = outputs_tuple(f(*xs))
    used = [k for k in float_outputs if outs[k].requires_grad]
    if not used:
        return {i: np.zeros(int(np.prod(inputs[i].shape))) for i in diff}, outs
    grads = torch.autograd.grad(
        [outs[k] for k in used], [xs[i] for i in diff],
        grad_outputs=[torch.as_tensor(v[k].reshape(outs[k].shape), dtype=outs[k].dtype,
                                      device=outs[k].device) for k in used],
        allow_unused=True)
    return {i: (np.zeros(int(np.prod(inputs[i].shape))) if g is None else
                as_numpy(g).reshape(-1).astype(np.float64)) for i, g in zip(diff, grads)}, outs


def _jax_restricted(f: Callable[..., Any], inputs: Sequence[Any], diff: Sequence[int],
                    float_outputs: Sequence[int]) -> Callable[..., Any]:
    def fd(*d: Any) -> tuple[Any, ...]:
        args = list(inputs)
        for i, a in zip(diff, d):
            args[i] = a
        outs, _ = outputs_tuple(f(*args))
        return tuple(outs[k] for k in float_outputs)

    return fd


def jax_jacobians(f: Callable[..., Any], inputs: Sequence[Any], diff: Sequence[int],
                  float_outputs: Sequence[int]) -> dict[tuple[int, int], np.ndarray | None]:
    """{(k, i): J (M_k, n_i)} from ``jax.jacrev`` (custom_vjp rules included)."""
    import jax

    fd = _jax_restricted(f, inputs, diff, float_outputs)
    jac = jax.jacrev(fd, argnums=tuple(range(len(diff))))(*[inputs[i] for i in diff])
    result: dict[tuple[int, int], np.ndarray | None] = {}
    for pos_k, k in enumerate(float_outputs):
        for pos_i, i in enumerate(diff):
            n_i = int(np.prod(inputs[i].shape))
            result[(k, i)] = np.asarray(jac[pos_k][pos_i], dtype=np.float64).reshape(-1, n_i)
    return result


def jax_vjp(f: Callable[..., Any], inputs: Sequence[Any], diff: Sequence[int],
            float_outputs: Sequence[int], v: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """{i: v^T J_i} from one ``jax.vjp``."""
    import jax
    import jax.numpy as jnp

    fd = _jax_restricted(f, inputs, diff, float_outputs)
    outs, pullback = jax.vjp(fd, *[inputs[i] for i in diff])
    cot = tuple(jnp.asarray(v[k].reshape(o.shape), dtype=o.dtype)
                for k, o in zip(float_outputs, outs))
    grads = pullback(cot)
    return {i: np.asarray(g, dtype=np.float64).reshape(-1) for i, g in zip(diff, grads)}


def callable_jacobians(reference: Callable[..., Any], inputs: Sequence[Any],
                       diff: Sequence[int], float_outputs: Sequence[int],
                       out_shapes: Sequence[tuple[int, ...]]
                       ) -> dict[tuple[int, int], np.ndarray | None]:
    """{(k, i): J} from a user callable returning the claimed Jacobian(s).

    ``reference(*inputs)`` returns, for one differentiated input and one output, one
    array of shape ``out.shape + in.shape``; with several inputs and one output a tuple
    over inputs; with several outputs and one input a tuple over outputs; otherwise a
    tuple over outputs of tuples over inputs. ``None`` means "zero".
    """
    claimed = reference(*inputs)
    n_out, n_in = len(float_outputs), len(diff)
    if not isinstance(claimed, (tuple, list)):
        nested: list[Any] = [[claimed]]
    elif n_out == 1:
        nested = [list(claimed)]
    elif n_in == 1:
        nested = [[c] for c in claimed]
    else:
        nested = [list(c) for c in claimed]
    if len(nested) != n_out or any(len(row) != n_in for row in nested):
        raise ValueError(f"reference returned Jacobians for {len(nested)} output(s) x "
                         f"{[len(r) for r in nested]} input(s); expected {n_out} x {n_in} "
                         "(a tuple over outputs of tuples over inputs).")
    result: dict[tuple[int, int], np.ndarray | None] = {}
    for pos_k, k in enumerate(float_outputs):
        m_k = int(np.prod(out_shapes[k]))
        for pos_i, i in enumerate(diff):
            n_i = int(np.prod(inputs[i].shape))
            j = nested[pos_k][pos_i]
            if j is None:
                result[(k, i)] = None
                continue
            arr = as_numpy(j).astype(np.float64)
            if arr.size != m_k * n_i:
                raise ValueError(
                    f"reference returned a Jacobian of shape {arr.shape} for output {k} and "
                    f"input {i}; expected out.shape + in.shape = "
                    f"{tuple(out_shapes[k]) + tuple(inputs[i].shape)}.")
            result[(k, i)] = arr.reshape(m_k, n_i)
    return result
