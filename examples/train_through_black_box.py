"""Train a small torch MLP whose output goes through a numpy black box.

The black box (think: a simulator written in numpy/Fortran) maps each sample's 3
features to 2 outputs; torch cannot differentiate it, so it is wrapped with
``nd.torch.fd_function``: backward uses the finite-difference Jacobian of the box.
The same training run with the box written in torch (exact autograd gradients)
reaches the same loss -- run this file to see both.
"""

from __future__ import annotations

import numpy as np
import torch

import numdiffx as nd

M = np.array([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.2]])


def black_box(z: np.ndarray) -> np.ndarray:
    """(batch, 3) -> (batch, 2) in numpy: tanh features mixed by M, then a sine."""
    return np.sin(np.tanh(z) @ M)


def black_box_torch(z: torch.Tensor) -> torch.Tensor:
    """The same map in torch: the exact-gradient reference."""
    return torch.sin(torch.tanh(z) @ torch.as_tensor(M))


def train(exact: bool, steps: int = 60, seed: int = 0) -> list[float]:
    """SGD on a 2-layer MLP followed by the box; returns the loss at every step."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    target = torch.sin(x @ torch.tensor([[1.0, 0.5], [-0.5, 1.0]], dtype=torch.float64))
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(),
                                torch.nn.Linear(8, 3)).double()
    box = black_box_torch if exact else nd.torch.fd_function(black_box, evaluation="batched")
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((box(model(x)) - target) ** 2)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


if __name__ == "__main__":
    fd, exact = train(exact=False), train(exact=True)
    print(f"loss: start {fd[0]:.6f}; after {len(fd)} steps: finite differences {fd[-1]:.10f}, "
          f"exact autograd {exact[-1]:.10f}, relative difference "
          f"{abs(fd[-1] - exact[-1]) / exact[-1]:.1e}")
