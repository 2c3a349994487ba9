"""Shared setup helpers; benchmarks import without asv installed."""

from __future__ import annotations

import numpy as np

from numdiffx.studies import make_mlp
from numdiffx.studies._networks import BackendNetwork, backend_available, network_for

SEED = 0


def require(backend: str) -> None:
    """asv skips a parameter combination whose setup raises NotImplementedError."""
    if not backend_available(backend):
        raise NotImplementedError(f"{backend} is not installed")


def mlp(backend: str, activation: str, dtype: str, rows: int
        ) -> tuple[BackendNetwork, object]:
    require(backend)
    net = network_for(make_mlp(activation, seed=SEED), backend, dtype)
    x = np.random.default_rng(SEED).standard_normal((rows, 5))
    return net, net.asarray(x)
