"""The jax path (reference="jax", nd.check_grads as jax.test_util.check_grads) and
cross_check: the same false-alarm work as for torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import numdiffx as nd

jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.fixture(autouse=True)
def _x64() -> Any:
    with jax.enable_x64(True):
        yield


def _wrong_vjp(scale: float) -> Any:
    @jax.custom_vjp
    def f(x: Any) -> Any:
        return jnp.sin(x) * x

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * (jnp.cos(x) * x + jnp.sin(x)) * scale,))
    return f


def test_check_grads_takes_jax_arguments_and_agrees_on_correct_functions() -> None:
    from jax.test_util import check_grads

    x = (jnp.array([0.3, 1.1, -0.7]),)
    for f in (jnp.sin, jnp.tanh, lambda x: jnp.cumprod(jnp.exp(x))):
        check_grads(f, x, order=2, modes=("fwd", "rev"))
        assert nd.check_grads(f, x, order=2, modes=("fwd", "rev")) is None
        nd.check_grads(f, x, 1, ["rev"], atol=1e-5, rtol=1e-5, eps=1e-4)
        nd.check_grads(f, x, 1, ("lin",), atol={np.float64: 1e-5})
    with pytest.raises(ValueError, match=r"modes must be a non-empty sequence"):
        nd.check_grads(jnp.sin, x, 1, modes="fwd")
    with pytest.raises(ValueError, match=r"order must be an int >= 1"):
        nd.check_grads(jnp.sin, x, 0)


def test_check_grads_catches_what_jax_catches_and_a_small_error_jax_misses() -> None:
    from jax.test_util import check_grads

    x = (jnp.array([0.3, 1.1, -0.7]),)
    with pytest.raises(AssertionError):
        check_grads(_wrong_vjp(1.1), x, order=1, modes=("rev",))
    with pytest.raises(nd.GradcheckError, match=r"1\.1 times the true derivative"):
        nd.check_grads(_wrong_vjp(1.1), x, order=1, modes=("rev",))
    check_grads(_wrong_vjp(1.000001), x, order=1, modes=("rev",))  # within jax's 1e-5
    with pytest.raises(nd.GradcheckError):
        nd.check_grads(_wrong_vjp(1.000001), x, order=1, modes=("rev",))


def test_no_false_alarm_near_poles_on_the_jax_path() -> None:
    for f, values in ((jnp.tan, (1.5, -1.56)), (jax.scipy.special.logit, (0.9999, 0.5))):
        x = (jnp.array(values),)
        for fast in (False, True):
            assert nd.gradcheck(f, x, fast_mode=fast)
        nd.check_grads(f, x, order=2)


def test_jax_complex_functions_are_checked_in_the_real_view() -> None:
    z = (jnp.array([0.3 + 1.0j, -0.2 + 0.5j, 1.5 - 0.3j]),)
    for fast in (False, True):
        assert nd.gradcheck(jnp.fft.fft, z, fast_mode=fast)


def test_cross_check_counts_the_fd_error_of_each_numerical_jacobian() -> None:
    torch = pytest.importorskip("torch")
    x = np.array([1.56, 0.3])  # tan is steep near pi/2: the FD error is far above 1e-8
    report = nd.cross_check({"numpy": np.tan, "torch": torch.tan, "jax": jnp.tan}, x)
    assert report.passed, str(report)
    with pytest.raises(nd.GradcheckError, match=r"numpy vs torch_port"):
        nd.cross_check({"numpy": np.tan, "torch_port": lambda x: torch.tan(x) * 1.0001}, x)
