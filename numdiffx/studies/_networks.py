"""The same MLP (same weights) written once per backend; torch/jax imported lazily.

``network_for(net, backend, dtype, device)`` returns a :class:`BackendNetwork`: ``f``
accepts any leading (batch) axes, ``asarray`` converts a numpy input to the backend (on
``device``: ``"cpu"``, or ``"cuda"`` for torch CUDA, jax's GPU and cupy), ``to_numpy``
converts results back. Used by the delta and timing studies and by asv_bench.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._mlp import MLP

__all__ = ["BACKENDS", "DEVICES", "GPU_BACKENDS", "BackendNetwork", "backend_available",
           "device_unavailable", "network_for"]

BACKENDS = ("numpy", "torch", "jax")
#: libraries with GPU arrays (cupy's live only there: it is no CPU backend)
GPU_BACKENDS = ("torch", "jax", "cupy")
DEVICES = ("cpu", "cuda")


def backend_available(backend: str) -> bool:
    """Whether ``backend`` can be imported (without importing it)."""
    if backend not in (*BACKENDS, "cupy"):
        raise ValueError(f"backend={backend!r} is not known; use one of {BACKENDS} or "
                         "'cupy' (a GPU).")
    return backend == "numpy" or importlib.util.find_spec(backend) is not None


def device_unavailable(backend: str, device: str) -> str | None:
    """Why ``backend`` cannot run on ``device`` here (None: it can). Imports the backend."""
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not known; use one of {DEVICES}.")
    if not backend_available(backend):
        return f"{backend} is not installed"
    if device == "cpu":
        return "cupy arrays live on a GPU; use device='cuda'" if backend == "cupy" else None
    if backend == "numpy":
        return "numpy has no GPU arrays"
    try:
        if backend == "torch":
            import torch

            return None if torch.cuda.is_available() else "torch has no CUDA device here"
        if backend == "jax":
            import jax

            jax.devices("gpu")
            return None
        import cupy

        return None if cupy.cuda.runtime.getDeviceCount() > 0 else "cupy sees no GPU"
    except Exception as exc:  # noqa: BLE001 - any driver/runtime failure: no usable GPU
        return f"{backend} has no usable GPU here ({type(exc).__name__}: {exc})"


@dataclass(frozen=True)
class BackendNetwork:
    backend: str
    f: Callable[[Any], Any]
    asarray: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray]
    sync: Callable[[Any], Any]
    module: Any = None  # torch or jax.numpy, for the autodiff baselines


def network_for(net: MLP, backend: str = "numpy", dtype: str = "float64",
                device: str = "cpu") -> BackendNetwork:
    """``net`` (cast to ``dtype``) as a function of ``backend`` arrays on ``device``
    (``"cpu"``; ``"cuda"``: torch CUDA, jax's first GPU, cupy), same weights."""
    if not backend_available(backend):
        raise ModuleNotFoundError(f"backend {backend!r} is not installed; install it "
                                  f"(pip install 'numdiffx[{backend}]') or pick another.")
    reason = device_unavailable(backend, device)
    if reason is not None:
        raise ValueError(f"backend {backend!r} cannot run on device {device!r}: {reason}.")
    cast = net.astype(dtype)
    if backend == "numpy":
        return BackendNetwork("numpy", cast, lambda a: np.asarray(a, dtype=dtype),
                              np.asarray, lambda a: a, np)
    if backend == "torch":
        return _torch_network(cast, dtype, device)
    if backend == "cupy":
        return _cupy_network(cast, dtype)
    return _jax_network(cast, dtype, device)


def _torch_network(net: MLP, dtype: str, device: str = "cpu") -> BackendNetwork:
    import torch

    wts = [torch.from_numpy(np.ascontiguousarray(w.T)).to(device) for w in net.weights]
    bs = [torch.from_numpy(b.copy()).to(device) for b in net.biases]
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

    return BackendNetwork("torch", f, lambda a: torch.from_numpy(np.asarray(a, dtype=dtype)
                                                                 ).to(device),
                          lambda a: a.detach().cpu().numpy(), sync, torch)


def _layers(wts: list[Any], bs: list[Any], act: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The network's forward pass over any leading axes: ``act(h @ w + b)`` per layer
    (no activation after the last)."""

    def f(x: Any) -> Any:
        h = x
        for i, (w, b) in enumerate(zip(wts, bs)):
            h = h @ w + b
            if i < len(wts) - 1:
                h = act(h)
        return h

    return f


def _cupy_network(net: MLP, dtype: str) -> BackendNetwork:
    import cupy

    wts = [cupy.asarray(np.ascontiguousarray(w.T)) for w in net.weights]
    bs = [cupy.asarray(b) for b in net.biases]
    act = (lambda h: cupy.maximum(h, 0)) if net.activation == "relu" else cupy.tanh
    f = _layers(wts, bs, act)

    def sync(a: Any) -> Any:
        cupy.cuda.get_current_stream().synchronize()
        return a

    return BackendNetwork("cupy", f, lambda a: cupy.asarray(np.asarray(a, dtype=dtype)),
                          lambda a: a.get(), sync, cupy)


def _jax_network(net: MLP, dtype: str, device: str = "cpu") -> BackendNetwork:
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    # "cpu": jax's default device (as before); "cuda": its first GPU
    where = jax.devices("gpu")[0] if device == "cuda" else None
    wts = [jnp.asarray(w.T, dtype=dtype, device=where) for w in net.weights]
    bs = [jnp.asarray(b, dtype=dtype, device=where) for b in net.biases]
    act = jax.nn.relu if net.activation == "relu" else jnp.tanh
    f = _layers(wts, bs, act)

    return BackendNetwork("jax", f, lambda a: jnp.asarray(np.asarray(a, dtype=dtype),
                                                          device=where),
                          lambda a: np.asarray(a), lambda a: a.block_until_ready(), jnp)
