"""Reference functions with known derivatives, written once against the namespace ``xp``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import numdiffx as nd


@dataclass(frozen=True)
class Problem:
    name: str
    f: Callable[[Any, Any], Any]  # f(xp, x) -> array
    jac: Callable[[np.ndarray], np.ndarray]  # exact Jacobian (numpy, float64)
    x: tuple[float, ...]
    scale: float = 1.0  # typical |derivative| for the relative tolerance
    step: object = None  # the step rule a user should pass for this problem


def _rosen(xp: Any, x: Any) -> Any:
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosen_grad(x: np.ndarray) -> np.ndarray:
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


def rosen_hess(x: np.ndarray) -> np.ndarray:
    n = x.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i + 1, i + 1] += 200.0
        h[i, i + 1] = h[i + 1, i] = -400.0 * x[i]
    return h


_W = np.array([[0.3, -0.2, 0.5], [0.1, 0.4, -0.3]])


def _mlp(xp: Any, x: Any) -> Any:
    w = xp.asarray(_W, dtype=x.dtype, device=_dev(x))
    return xp.tanh(w @ x) * 2.0


def _mlp_jac(x: np.ndarray) -> np.ndarray:
    z = _W @ x
    return 2.0 * (1.0 - np.tanh(z) ** 2)[:, None] * _W


def _dev(x: Any) -> Any:
    from array_api_compat import device

    return device(x)


PROBLEMS = [
    Problem("exp", lambda xp, x: xp.exp(x), lambda x: np.diag(np.exp(x)), (-1.0, 0.5, 2.0),
            scale=3.0),
    # sin varies on a scale of 1, not of |x|: the step must not grow with x
    Problem("sin_large_x", lambda xp, x: xp.sin(x), lambda x: np.diag(np.cos(x)),
            (1e3, 1e3 + 0.7), step=nd.steps.auto(scale_with_x=False)),
    # log near 0 varies on the scale of x itself: typical=1 would be 100x too coarse
    Problem("log_near_0", lambda xp, x: xp.log(x), lambda x: np.diag(1.0 / x), (1e-2, 3e-2),
            scale=100.0, step=nd.steps.auto(typical=1e-3)),
    Problem("poly", lambda xp, x: x**3 - 2.0 * x**2 + x, lambda x: np.diag(3 * x**2 - 4 * x + 1),
            (-1.5, 0.25, 2.0), scale=5.0),
    Problem("rosenbrock", lambda xp, x: _rosen(xp, x), rosen_grad, (-1.2, 1.0, 0.8),
            scale=200.0),
    Problem("tanh_mlp", _mlp, _mlp_jac, (0.4, -1.1, 0.9)),
]
