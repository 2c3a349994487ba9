"""One suite over every installed array library: the ``xp`` fixture.

Each parameter yields an ``ArrayBackend``: the namespace plus how to build arrays on
the device under test. Libraries that are not installed (or need a GPU that is not
present) are skipped, never failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

# Two host "devices" for jax, so device propagation is tested on a non-default device
# (set before jax is first imported; jax is imported lazily by the factories below).
# (appended to flags already set: tests/test_devices.py needs the second device)
_XLA_FLAGS = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _XLA_FLAGS:
    os.environ["XLA_FLAGS"] = f"{_XLA_FLAGS} --xla_force_host_platform_device_count=2".strip()


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
        if self.name.startswith("array_api_strict"):  # (no implicit copy off device1)
            return np.asarray(a.to_device(self.xp.Device("CPU_DEVICE")))
        return np.asarray(a)


def _numpy() -> ArrayBackend:
    import array_api_compat.numpy as xp

    return ArrayBackend("numpy", xp, "cpu")


def _strict() -> ArrayBackend:
    xp = pytest.importorskip("array_api_strict")
    return ArrayBackend("array_api_strict", xp, xp.Device("CPU_DEVICE"))


def _strict_device1() -> ArrayBackend:
    """array-api-strict on its non-default device: like a GPU library, it refuses to
    combine arrays of two devices (and to copy one to numpy implicitly)."""
    xp = pytest.importorskip("array_api_strict")
    return ArrayBackend("array_api_strict_device1", xp, xp.Device("device1"))


def _torch(device: str = "cpu") -> ArrayBackend:
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here")
    import array_api_compat.torch as xp

    return ArrayBackend(f"torch_{device}" if device != "cpu" else "torch", xp,
                        torch.device(device))


def _jax(platform: str = "cpu", index: int = 0) -> ArrayBackend:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)  # float64 tests are real float64
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        pytest.skip(f"jax has no {platform} device here")
    if len(devices) <= index:
        pytest.skip(f"jax has only {len(devices)} {platform} device(s)")
    import jax.numpy as xp

    name = "jax" if platform == "cpu" else f"jax_{platform}"
    return ArrayBackend(name if index == 0 else f"{name}_device{index}", xp, devices[index])


def _cupy() -> ArrayBackend:
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
        device = cp.cuda.Device(0)
    except Exception:  # noqa: BLE001 - any CUDA failure means: no usable GPU
        pytest.skip("cupy has no usable GPU here")
    import array_api_compat.cupy as xp

    return ArrayBackend("cupy", xp, device)


_FACTORIES = {"numpy": _numpy, "array_api_strict": _strict, "torch": _torch,
              "torch_cuda": lambda: _torch("cuda"), "jax": _jax,
              "jax_gpu": lambda: _jax("gpu"),
              "cupy": _cupy}


#: devices other than the CPU default: the stand-ins for a GPU on a CPU-only machine (a
#: non-default device of a library that keeps arrays on their device; jax's second host
#: device: XLA_FLAGS above), and the GPUs themselves where present (asv_bench/gpu/run.sh)
_DEVICE_FACTORIES = {"array_api_strict_device1": _strict_device1,
                     "jax_device1": lambda: _jax("cpu", 1),
                     "torch_cuda": lambda: _torch("cuda"), "jax_gpu": lambda: _jax("gpu"),
                     "cupy": _cupy}


def available_backends() -> list[str]:
    return list(_FACTORIES)


@pytest.fixture(params=available_backends())
def xb(request: pytest.FixtureRequest) -> ArrayBackend:
    """The array backend under test (namespace + device)."""
    return _FACTORIES[request.param]()


@pytest.fixture(params=list(_DEVICE_FACTORIES))
def device_xb(request: pytest.FixtureRequest) -> ArrayBackend:
    """An array backend on a NON-default device (array-api-strict's ``device1``, jax's
    second host device): device bugs show on CPU, as they would on a GPU."""
    return _DEVICE_FACTORIES[request.param]()


def assert_array_like(result: Any, xb: ArrayBackend, dtype: Any, shape: tuple[int, ...]) -> None:
    """Namespace, dtype, shape and device first; values are checked by the caller."""
    from array_api_compat import array_namespace, device

    assert array_namespace(result) is array_namespace(xb.asarray([0.0])), type(result)
    assert result.dtype == dtype, (result.dtype, dtype)
    assert tuple(result.shape) == shape
    assert device(result) == xb.device, (device(result), xb.device)


#: Cases that cost a minute or more on 2 busy cores, run with ``-m slow`` (CI runs them):
#: the README's test command must stay under 15 minutes. Each keeps a quick sibling in
#: the default run (another backend, the same rule without jit or without full_output).
#: Matched as node-id prefixes (``tests/file.py::test[params``).
SLOW_CASES = (
    # jax.jit of the adaptive rule with full_output: ~6000 HLO ops (the tableau and its
    # estimate unrolled), minutes of XLA compile; eager and full_output=False stay quick
    "tests/test_jit.py::test_every_rule_returns_a_diffresult_from_jit[adaptive]",
    "tests/test_docs_examples.py::test_page_examples_run[backends.md]",
    # eager jax through every level of the tableau op by op; numpy/torch/strict stay
    "tests/test_adaptive.py::test_nested_points_are_reused_without_changing_a_bit[jax-",
    "tests/test_sparse_hessian.py::test_detection_on_every_backend[jax]",
    "tests/test_sparse_hessian.py::test_from_f_equals_the_dense_hessian_on_the_pattern[jax]",
    # 10-25 s each on an idle machine, jax eager or jax compiles; numpy and torch stay
    "tests/test_docs_examples.py::test_page_examples_run[models.md]",
    "tests/test_trees.py::test_nested_tuple_and_namedtuple_arguments_batched_and_adaptive[jax]",
    "tests/test_check_grads_dropin.py::test_numdiffx_arithmetic_on_jax_arrays_is_clean_under_stri",
    "tests/test_sparse.py::test_sparse_adaptive_per_nonzero_on_every_backend[jax]",
    "tests/test_sparse_hessian.py::test_from_g_on_every_backend[jax]",
    "tests/test_checks_columns.py::test_loop_gives_the_engines_bits[jax-auto-",
    "tests/test_adaptive.py::test_dtype_is_kept_and_jacobian_is_accurate[jax-float32]",
    "tests/test_checks_corpus.py::test_corpus_slice_jax",
    "tests/test_sparse.py::test_sparse_equals_dense[jax-central-banded]",
    "tests/test_adaptive.py::test_hessian_adaptive[jax]",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SLOW_CASES):
            item.add_marker(pytest.mark.slow)
