"""numpy adapter: numpy has no vmap, so "auto" evaluation loops (or use "batched")."""

from __future__ import annotations

from numdiffx.backends import Backend


class NumpyBackend(Backend):
    name = "numpy"


BACKEND = NumpyBackend()
