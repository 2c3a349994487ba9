"""One suite over every installed array library: the ``xp`` fixture.

Each parameter yields an ``ArrayBackend``: the namespace plus how to build arrays on
the device under test. Libraries that are not installed (or need a GPU that is not
present) are skipped, never failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest


@dataclass(frozen=True)
class ArrayBackend:
    name: str
    xp: Any  # array-api-compat namespace
    device: Any

    def asarray(self, a: Any, dtype: str = "float64") -> Any:
        return self.xp.asarray(np.asarray(a, dtype=dtype), device=self.device,
                               dtype=getattr(self.xp, dtype))

    def to_numpy(self, a: Any) -> np.ndarray:
        if self.name.startswith("torch"):
            return a.detach().cpu().numpy()
        if self.name.startswith("cupy"):
            return a.get()
        return np.asarray(a)


def _numpy() -> ArrayBackend:
    import array_api_compat.numpy as xp

    return ArrayBackend("numpy", xp, "cpu")


def _strict() -> ArrayBackend:
    xp = pytest.importorskip("array_api_strict")
    return ArrayBackend("array_api_strict", xp, xp.Device("CPU_DEVICE"))


_FACTORIES = {"numpy": _numpy, "array_api_strict": _strict}


def available_backends() -> list[str]:
    return list(_FACTORIES)


@pytest.fixture(params=available_backends())
def xb(request: pytest.FixtureRequest) -> ArrayBackend:
    """The array backend under test (namespace + device)."""
    return _FACTORIES[request.param]()


def assert_array_like(result: Any, xb: ArrayBackend, dtype: Any, shape: tuple[int, ...]) -> None:
    """Namespace, dtype, shape and device first; values are checked by the caller."""
    from array_api_compat import array_namespace, device

    assert array_namespace(result) is array_namespace(xb.asarray([0.0])), type(result)
    assert result.dtype == dtype, (result.dtype, dtype)
    assert tuple(result.shape) == shape
    assert device(result) == xb.device, (device(result), xb.device)
