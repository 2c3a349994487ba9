"""The report's network, 5-128-128-128-5, in numpy with an exact (analytic) Jacobian.

The report: "JacrevFinite: Finite Difference approach to replacing PyTorch Autograd",
B. Hendrata, 2024 (``numdiffx.studies.REPORT``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["MLP", "make_mlp"]

_ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray],
                              Callable[[np.ndarray], np.ndarray]]] = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
}


@dataclass(frozen=True)
class MLP:
    """``y = W4 a(W3 a(W2 a(W1 x + b1) + b2) + b3) + b4`` applied to the last axis.

    Works on any leading axes, so ``mlp(x)`` with x of shape (100, 5) maps each row and
    ``mlp(batch)`` with shape (m, 100, 5) is the batched call (JacrevFinite's contract).
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str

    def astype(self, dtype: np.dtype | str) -> MLP:
        return MLP(tuple(w.astype(dtype) for w in self.weights),
                   tuple(b.astype(dtype) for b in self.biases), self.activation)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Leading axes are flattened so each layer is ONE 2-D GEMM (numpy's stacked 3-D
        # matmul is ~2x slower), and bias/activation are applied in place: the same
        # arithmetic as ``act(h @ w.T + b)`` without the temporaries.
        lead = x.shape[:-1]
        h = np.asarray(x).reshape(-1, x.shape[-1])
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T
            h += b
            if i < last:
                if self.activation == "relu" and not np.iscomplexobj(h):
                    np.maximum(h, 0, out=h)
                elif self.activation == "tanh":
                    np.tanh(h, out=h)
                else:
                    h = _ACTIVATIONS[self.activation][0](h)
        return h.reshape(*lead, h.shape[-1])

    def pre_activations(self, x: np.ndarray) -> list[np.ndarray]:
        act = _ACTIVATIONS[self.activation][0]
        zs, h = [], x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            z = h @ w.T + b
            zs.append(z)
            h = act(z)
        return zs

    def sample_jacobians(self, x: np.ndarray) -> np.ndarray:
        """Exact per-row Jacobians, shape (rows, out, in)."""
        dact = _ACTIVATIONS[self.activation][1]
        zs = self.pre_activations(x)
        jac = np.broadcast_to(self.weights[0], (x.shape[0], *self.weights[0].shape))
        for z, w in zip(zs, self.weights[1:]):
            jac = w @ (dact(z)[:, :, None] * jac)
        return np.asarray(jac)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Exact Jacobian of x (rows, in) -> y (rows, out), layout (rows, out, rows, in)."""
        per = self.sample_jacobians(x)
        rows, n_out, n_in = per.shape
        full = np.zeros((rows, n_out, rows, n_in), dtype=per.dtype)
        idx = np.arange(rows)
        full[idx, :, idx, :] = per
        return full


def make_mlp(activation: str = "tanh", sizes: tuple[int, ...] = (5, 128, 128, 128, 5),
             seed: int = 0) -> MLP:
    """The report's network with torch.nn.Linear's default initialisation, fixed seed."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not known; use one of "
                         f"{sorted(_ACTIVATIONS)}.")
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=(fan_out, fan_in)))
        biases.append(rng.uniform(-bound, bound, size=(fan_out,)))
    return MLP(tuple(weights), tuple(biases), activation)
