"""nd.check_grads as a drop-in for jax.test_util.check_grads (issue 31): one test per cause
that broke JAX's own suite with numdiffx swapped in, each next to jax's own verdict."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import numpy as np
import pytest

import numdiffx as nd

jax = pytest.importorskip("jax")
jnp = jax.numpy
lax = jax.lax
jax_check_grads = pytest.importorskip("jax.test_util").check_grads


@pytest.fixture(autouse=True)
def _x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def both(f: Any, args: Any, order: int, **kw: Any) -> None:
    """jax's check_grads and numdiffx's pass alike."""
    jax_check_grads(f, args, order, **kw)
    assert nd.check_grads(f, args, order, **kw) is None


def _scaled_vjp(scale: float, g: Any = jnp.sin) -> Any:
    @jax.custom_vjp
    def f(x: Any) -> Any:
        return g(x)

    f.defvjp(lambda x: (g(x), x),
             lambda x, ct: (ct * jax.jvp(g, (x,), (jnp.ones_like(x),))[1] * scale,))
    return f


def _scaled_jvp(scale: float, g: Any = jnp.sin) -> Any:
    @jax.custom_jvp
    def f(x: Any) -> Any:
        return g(x)

    f.defjvp(lambda p, t: (g(p[0]), jax.jvp(g, p, t)[1] * scale))
    return f


# -- 1. numpy arrays, Python and numpy scalars, mixed, lists of scalars, pytrees --------------
def test_numpy_arrays_scalars_lists_and_mixed_args_are_taken_as_jax_takes_them() -> None:
    x = np.array([0.3, 1.1, -0.7])
    both(jnp.sin, (x,), 2)
    both(lambda a, b: a * jnp.tanh(b), (1.5, np.float64(0.7)), 2)  # Python, numpy scalars
    both(lambda a, b: a * jnp.exp(b), (x, jnp.array([0.1, 0.2, 0.3])), 1)  # numpy + jax
    both(lambda a, b: jnp.sin(a) * b, [0.5, 2.0], 1, modes=("rev",))  # a list of scalars
    both(lambda z: jnp.exp(z) * z, (np.complex128(0.3 + 0.5j),), 1)  # Python complex


def test_pytree_args_are_checked_leaf_by_leaf_and_named_by_path() -> None:
    params = {"w": np.array([[0.5, -0.2], [0.1, 0.9]]), "b": (jnp.array([0.3, 0.1]), 0.7)}

    def model(p: Any, x: Any) -> Any:
        return {"y": jnp.tanh(p["w"] @ x + p["b"][0]) * p["b"][1], "norm": jnp.sum(x**2)}

    both(model, (params, np.array([1.0, -2.0])), 2)

    @jax.custom_jvp
    def bad_tanh(x: Any) -> Any:
        return jnp.tanh(x)

    bad_tanh.defjvp(lambda p, t: (jnp.tanh(p[0]), t[0] * 1.01 * (1 - jnp.tanh(p[0]) ** 2)))

    def buggy(p: Any, x: Any) -> Any:
        return {"norm": jnp.sum(x**2), "y": bad_tanh(p["w"] @ x)}

    with pytest.raises(AssertionError):
        jax_check_grads(buggy, (params, np.array([1.0, -2.0])), 1, modes=("fwd",))
    with pytest.raises(AssertionError, match=r"JVP: tangent of out\['y'\]\[\d\] differs"):
        nd.check_grads(buggy, (params, np.array([1.0, -2.0])), 1, modes=("fwd",))


# -- 2. {dtype: tolerance} dicts with jax's fallback; eps as a 0-d array ----------------------
def test_tolerance_dicts_fall_back_to_jax_defaults_and_eps_may_be_a_0d_array() -> None:
    x = (np.array([0.3, 1.1], dtype=np.float32),)
    kw = {"atol": {np.float64: 1e-9}, "rtol": {np.float32: 1e-2, np.float64: 1e-3}}
    both(jnp.tanh, x, 2, **kw)  # float32 not named in atol: jax's 2e-3
    both(jnp.tanh, (np.array([0.3, 1.1]),), 1, eps=jnp.array(1e-4))
    both(jnp.tanh, (np.array([0.3, 1.1]),), 1, eps=np.array(1e-3), atol=np.array(1e-4))
    with pytest.raises(TypeError, match=r"atol must be a number, a 0-d array or a"):
        nd.check_grads(jnp.tanh, x, 1, atol="tight")


def test_caller_tolerances_are_scaled_by_size_as_jax_does() -> None:
    # a 2e-4 relative error in a 50-element output: inside jax's rtol 1e-5 * 50 = 5e-4
    f = _scaled_jvp(1 + 2e-4)
    x = (np.linspace(0.1, 1.0, 50),)
    both(f, x, 1, modes=("fwd",), rtol=1e-5, atol=1e-5)
    with pytest.raises(AssertionError, match=r"1\.0002 times the true derivative"):
        nd.check_grads(f, x, 1, modes=("fwd",))  # numdiffx's own tolerances catch it
    with pytest.raises(AssertionError, match=r"1\.0002 times the true derivative"):
        nd.check_grads(_scaled_vjp(1 + 2e-4), x, 1, modes=("rev",), rtol=1e-5, atol=1e-5)


# -- 3. jax's strict configuration ----------------------------------------------------------
@pytest.mark.parametrize("x64", [True, False])
def test_clean_under_strict_promotion_rank_raise_checks_and_x64_either_way(x64: bool) -> None:
    a = np.linspace(-1.0, 1.0, 12 * 12).reshape(12, 12) / 12

    def mixed(m: Any, v: Any, z: Any) -> Any:
        return jnp.tanh(m @ v) * jnp.abs(z) ** 2, jnp.fft.fft(v.astype(z.dtype) * z)

    dtype = np.float64 if x64 else np.float32
    ctype = np.complex128 if x64 else np.complex64
    args = (jnp.asarray(a.astype(dtype)), jnp.asarray(np.linspace(0.1, 1.2, 12), dtype),
            jnp.asarray(np.linspace(0.5, 1.0, 12) + 0.3j, ctype))
    with jax.enable_x64(x64), jax.numpy_dtype_promotion("strict"), \
            jax.numpy_rank_promotion("raise"), jax.enable_checks(True):
        both(mixed, args, 2)


# -- 4. 16-bit arguments at the caller's tolerances -------------------------------------------
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_args_are_checked_at_the_callers_tolerances(dtype: str) -> None:
    x = np.array([0.3, 0.9, -0.6], dtype=jnp.dtype(dtype))  # ml_dtypes numpy for bfloat16
    both(jnp.sin, (x,), 1, eps=0.1, rtol=0.1, atol=0.1)  # as JAX's own 16-bit tests
    both(jnp.sin, (jnp.asarray(x),), 1, eps=0.05)  # jax's default tolerances for 16-bit
    with pytest.raises(AssertionError, match=r"VJP"):
        nd.check_grads(_scaled_vjp(2.0), (x,), 1, modes=("rev",), eps=1e-1, rtol=0.1)


# -- 5. only the modes asked for ------------------------------------------------------------
def test_fwd_only_at_order_2_never_builds_a_vjp() -> None:
    def iterate(x: Any) -> Any:  # lax.while_loop: forward mode only
        return lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, jnp.sin(c[1]) * 1.1),
                              (0, x))[1]

    x = (np.array([0.3, 0.8]),)
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
        jax.grad(lambda x: iterate(x).sum())(*x)
    both(iterate, x, 2, modes=("fwd",))
    both(iterate, x, 2, modes=("lin",))


# -- 6. device and sharding kept on every perturbed copy -------------------------------------
def test_a_committed_array_keeps_its_device_and_sharding_on_perturbed_copies() -> None:
    if len(jax.devices()) < 2:
        pytest.skip("needs two jax devices (XLA_FLAGS from conftest)")
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:2]), ("d",))
    sharding = NamedSharding(mesh, PartitionSpec("d"))
    f = jax.jit(lambda x: jnp.sin(x) * 2.0, in_shardings=sharding, out_shardings=sharding)
    x = jax.device_put(np.linspace(0.1, 0.8, 4), sharding)
    seen = []

    def spy(x: Any) -> Any:
        if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
            seen.append(x.sharding)
        return f(x)

    nd.check_grads(spy, (x,), 2)
    assert seen and all(s == sharding for s in seen)
    y = jax.device_put(np.array([0.2, 0.4]), jax.devices()[1])
    nd.check_grads(lambda y: jnp.sin(y) + y.sum(), (y,), 1)
    assert y.devices() == {jax.devices()[1]}


# -- 7. NaN on both sides; infinite inputs --------------------------------------------------
def test_nan_on_both_sides_matches_as_in_jax_and_infinite_inputs_pass() -> None:
    both(lambda x: jnp.sqrt(x), (np.array([-1.0, 0.5]),), 1)  # NaN value and derivative
    both(jax.nn.softplus, (np.array([-np.inf, 0.3, 2.0]),), 2)  # JAX compares 0 with 0
    both(jax.nn.mish, (np.array([-np.inf, 0.3]),), 1)

    @jax.custom_jvp
    def off(x: Any) -> Any:
        return jnp.sqrt(x)

    off.defjvp(lambda p, t: (jnp.sqrt(p[0]), t[0] * 0.6 / jnp.sqrt(p[0])))
    with pytest.raises(AssertionError, match=r"(?s)tangent of out\[1\].*1 element\(s\) where "
                       r"both sides are NaN counted as matching"):
        nd.check_grads(off, (np.array([-1.0, 0.5]),), 1, modes=("fwd",))


# -- numdiffx's part: no false alarm where jax's fixed step is too coarse ----------------------
def test_the_fd_error_estimate_rescues_a_steep_function_that_jax_fails() -> None:
    x = (np.array([1.5695, 0.3]),)  # tan, 1.3e-3 from its pole: eps=1e-4 is far too coarse
    with pytest.raises(AssertionError):
        jax_check_grads(jnp.tan, x, 1, modes=("fwd",))
    nd.check_grads(jnp.tan, x, 1, modes=("fwd",))
    with pytest.raises(AssertionError, match=r"1\.001 times"):
        nd.check_grads(_scaled_vjp(1.001, jnp.tan), x, 1, modes=("rev",))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"modes must be a non-empty sequence"):
        nd.check_grads(jnp.sin, (1.0,), 1, modes=("fwd", "backward"))
    with pytest.raises(ValueError, match=r"order must be an int >= 1"):
        nd.check_grads(jnp.sin, (1.0,), 0)


def test_numdiffx_arithmetic_on_jax_arrays_is_clean_under_strict_promotion() -> None:
    m = jnp.asarray(np.linspace(-1.0, 1.0, 16).reshape(4, 4) / 4)
    v = jnp.asarray(np.linspace(0.1, 1.2, 4))
    z = jnp.asarray(np.linspace(0.5, 1.0, 4) + 0.3j)
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        jac = nd.jacobian(lambda v: jnp.tanh(m @ v), v)  # rank: x (n,) + shifts (n, n)
        np.testing.assert_allclose(jac, jax.jacfwd(lambda v: jnp.tanh(m @ v))(v), rtol=1e-7)
        nd.jvp(lambda v: jnp.tanh(m @ v), (v,), (v,))
        czj = nd.jacobian(lambda z: jnp.exp(z) * z, z)  # complex work, real steps
        np.testing.assert_allclose(czj, jnp.diag(jnp.exp(z) * (1 + z)), rtol=1e-7, atol=1e-9)
        assert nd.gradcheck(lambda z: jnp.exp(z) * z, (z,))  # jax reference: complex view


# -- checkpoint= and progress= (numdiffx.jacobian's), on both paths --------------------------
def _concrete_calls(g: Any) -> tuple[Any, list[Any]]:
    """g, and the list of the concrete (not traced) arguments it is evaluated at."""
    seen: list[Any] = []

    def f(x: Any) -> Any:
        if not isinstance(x, jax.core.Tracer):
            seen.append(np.asarray(x).copy())
        return g(x)

    return f, seen


def test_checkpoint_keeps_every_evaluation_and_a_rerun_makes_none(tmp_path: Any) -> None:
    ck = str(tmp_path / "check.sqlite")
    x = (np.array([0.3, 1.1, -0.7]),)
    f, seen = _concrete_calls(jnp.sin)
    nd.check_grads(f, x, 1, checkpoint=ck)
    assert len(seen) == 3  # f(x) and jax's two points
    seen.clear()
    nd.check_grads(f, x, 1, checkpoint=ck)
    assert len(seen) == 1  # f(x) only: it fingerprints f; both points are read back
    # a rule 1e-3 off: its verdict, with the smaller steps numdiffx adds, is the same again
    bad, bad_seen = _concrete_calls(_scaled_vjp(1.001, jnp.tan))
    counts = []
    for _ in range(2):
        with pytest.raises(AssertionError, match=r"1\.001 times"):
            nd.check_grads(bad, (np.array([1.5695, 0.3]),), 1, modes=("rev",), checkpoint=ck)
        counts.append(len(bad_seen))
    assert counts[0] > 3 and counts[1] == counts[0] + 1  # the rerun: f(x) only

    def rows() -> tuple[int, int]:
        with closing(sqlite3.connect(ck)) as conn:
            return (conn.execute("SELECT COUNT(*) FROM sections").fetchone()[0],
                    conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    before = rows()
    nd.check_grads(f, x, 2, checkpoint=ck)  # order 2: the jvp's evaluations are kept too
    after = rows()
    nd.check_grads(f, x, 2, checkpoint=ck)
    # two more points of jax's recursion (JVP, VJP), their evaluations, none added again
    assert after[0] == before[0] + 2 and after[1] >= before[1] + 6 and rows() == after
    # the same call with another f (same name, other values): refused, never answered
    g, _ = _concrete_calls(jnp.cos)
    with pytest.raises(ValueError, match="f has changed"):
        nd.check_grads(g, x, 1, checkpoint=ck)
    nd.check_grads(f, (x[0] + 1,), 1, checkpoint=ck)  # other args: a section of their own
    with pytest.raises(TypeError, match="checkpoint must be None or the path"):
        nd.check_grads(f, x, 1, checkpoint=1)


def test_progress_reports_the_evaluations_and_is_silent_by_default(capsys: Any) -> None:
    told: list[tuple[int, int]] = []
    nd.check_grads(jnp.sin, (np.array([0.3, 1.1]),), 2,
                   progress=lambda d, t: told.append((d, t)))
    # order 2 in fwd and rev: three points of jax's recursion, two evaluations each (and
    # two more per smaller step numdiffx adds where jax's comparison fails)
    done = [d for d, _ in told]
    assert done == list(range(1, len(done) + 1)) and len(done) >= 6 and len(done) % 2 == 0
    assert all(t >= d for d, t in told)
    nd.check_grads(jnp.sin, (np.array([0.3, 1.1]),), 1, progress=True)
    assert "evaluations" in capsys.readouterr().err
    nd.check_grads(jnp.sin, (np.array([0.3, 1.1]),), 1)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress must be None"):
        nd.check_grads(jnp.sin, (1.0,), 1, progress="yes")


def test_torch_path_passes_checkpoint_and_progress_to_gradcheck(tmp_path: Any,
                                                                monkeypatch: Any) -> None:
    torch = pytest.importorskip("torch")
    from numdiffx.checks import _jax_grads

    x = torch.linspace(0.2, 1.4, 4, dtype=torch.float64, requires_grad=True)
    ck, seen = str(tmp_path / "torch.sqlite"), []
    real = _jax_grads.gradcheck

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append((kwargs["checkpoint"], kwargs["progress"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(_jax_grads, "gradcheck", spy)
    report = print  # a callable: passed through unchanged
    # order 2 in jax's default modes: the second order in reverse mode (no false alarm)
    nd.check_grads(torch.sin, (x,), 2, checkpoint=ck, progress=report)
    assert seen == [(ck, report)] * 2
    with pytest.raises(AssertionError):
        nd.check_grads(lambda x: torch.sin(x) * x.detach(), (x,), 1)
