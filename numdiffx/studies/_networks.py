"""The same MLP (same weights) written once per backend; torch/jax imported lazily.

``network_for(net, backend, dtype)`` returns a :class:`BackendNetwork`: ``f`` accepts any
leading (batch) axes, ``asarray`` converts a numpy input to the backend, ``to_numpy``
converts results back. Used by the delta and timing studies and by asv_bench.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._mlp import MLP

__all__ = ["BACKENDS", "BackendNetwork", "backend_available", "network_for"]

BACKENDS = ("numpy", "torch", "jax")


def backend_available(backend: str) -> bool:
    """Whether ``backend`` can be imported (without importing it)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not known; use one of {BACKENDS}.")
    return backend == "numpy" or importlib.util.find_spec(backend) is not None


@dataclass(frozen=True)
class BackendNetwork:
    backend: str
    f: Callable[[Any], Any]
    asarray: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray]
    sync: Callable[[Any], Any]
    module: Any = None  # torch or jax.numpy, for the autodiff baselines


def network_for(net: MLP, backend: str = "numpy", dtype: str = "float64") -> BackendNetwork:
    """``net`` (cast to ``dtype``) as a function of ``backend`` arrays, same weights."""
    if not backend_available(backend):
        raise ModuleNotFoundError(f"backend {backend!r} is not installed; install it "
                                  f"(pip install 'numdiffx[{backend}]') or pick another.")
    cast = net.astype(dtype)
    if backend == "numpy":
        return BackendNetwork("numpy", cast, lambda a: np.asarray(a, dtype=dtype),
                              np.asarray, lambda a: a, np)
    if backend == "torch":
        return _torch_network(cast, dtype)
    return _jax_network(cast, dtype)


def _torch_network(net: MLP, dtype: str) -> BackendNetwork:
    import torch

    wts = [torch.from_numpy(np.ascontiguousarray(w.T)) for w in net.weights]
    bs = [torch.from_numpy(b.copy()) for b in net.biases]
    act = torch.relu if net.activation == "relu" else torch.tanh

    def f(x: Any) -> Any:
        h = x
        for i, (w, b) in enumerate(zip(wts, bs)):
            if h.dtype != w.dtype:  # complex step: promote the real weights
                w, b = w.to(h.dtype), b.to(h.dtype)
            h = h @ w + b
            if i < len(wts) - 1:
                h = act(h)
        return h

    def sync(a: Any) -> Any:
        if a.is_cuda:
            torch.cuda.synchronize()
        return a

    return BackendNetwork("torch", f, lambda a: torch.from_numpy(np.asarray(a, dtype=dtype)),
                          lambda a: a.detach().cpu().numpy(), sync, torch)


def _jax_network(net: MLP, dtype: str) -> BackendNetwork:
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    wts = [jnp.asarray(w.T, dtype=dtype) for w in net.weights]
    bs = [jnp.asarray(b, dtype=dtype) for b in net.biases]
    act = jax.nn.relu if net.activation == "relu" else jnp.tanh

    def f(x: Any) -> Any:
        h = x
        for i, (w, b) in enumerate(zip(wts, bs)):
            h = h @ w + b
            if i < len(wts) - 1:
                h = act(h)
        return h

    return BackendNetwork("jax", f, lambda a: jnp.asarray(np.asarray(a, dtype=dtype)),
                          lambda a: np.asarray(a), lambda a: a.block_until_ready(), jnp)
