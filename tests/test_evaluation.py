"""Evaluation: how f is called (batched, vmap, loop), the sentinel row, the fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import numdiffx as nd


def _exact_mix(x):
    return np.eye(x.size) / np.linalg.norm(x) - np.outer(x, x) / np.linalg.norm(x) ** 3


def test_batched_f_that_mixes_rows_is_refused_naming_the_mode():
    # x / ||x|| over the whole batch: every row depends on every other row. Before the
    # sentinel row this returned a Jacobian 0.24 off, silently.
    x = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"evaluation='batched'.*sentinel row.*f mixes the rows"):
        nd.jacobian(lambda v: v / np.linalg.norm(v), x, evaluation="batched")
    per_row = nd.jacobian(lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True), x,
                          evaluation="batched")
    np.testing.assert_allclose(per_row, _exact_mix(x), atol=1e-9)


def test_sentinel_ends_every_call_and_is_counted():
    x = np.array([0.5, 1.0, 1.5, 2.0])
    calls = []

    def f(v):  # exp: no entry near a stationary point, so no probe of the curvature
        calls.append(v.copy())
        return np.exp(v)

    r = nd.jacobian(f, x, evaluation="batched", chunk_size=4, full_output=True)
    batches = [c for c in calls[1:] if c.shape[0] > 1]
    assert [c.shape[0] for c in batches] == [5, 5]  # 4 points + x, twice
    for c in batches:
        np.testing.assert_array_equal(c[-1], x)  # the last row is x itself
    assert r.nfev == 1 + 8 + 2  # f(x), 8 points, 2 sentinels (no spot check: f is batched)




def _torch():
    return pytest.importorskip("torch")


def test_auto_falls_back_per_call_for_every_argnum():
    # vmap traces f(x, y) fine while only x is batched (y.item() is a plain tensor), but
    # not once y is batched: the fallback must be decided at that call, not at f(x).
    torch = _torch()

    def f(x, y):
        return x * y * float(y.sum().item())

    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    y = torch.tensor([3.0, 4.0], dtype=torch.float64)
    jx, jy = nd.jacobian(f, x, y, argnums=(0, 1))
    np.testing.assert_allclose(jx.numpy(), np.diag([21.0, 28.0]), rtol=1e-8)
    np.testing.assert_allclose(jy.numpy(), np.diag([7.0, 14.0]) + np.outer([3.0, 8.0], [1, 1]),
                               rtol=1e-8)
    with pytest.raises(RuntimeError):  # an explicit vmap does not fall back
        nd.jacobian(f, x, y, argnums=(0, 1), evaluation="vmap")


def test_jax_auto_falls_back_per_call_for_every_argnum():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def f(x, y):
        return x * y * float(y.sum())

    x, y = jnp.asarray([1.0, 2.0]), jnp.asarray([3.0, 4.0])
    jx, jy = nd.jacobian(f, x, y, argnums=(0, 1))
    np.testing.assert_allclose(np.asarray(jy), np.diag([7.0, 14.0]) + np.outer([3.0, 8.0], [1, 1]),
                               rtol=1e-8)
    np.testing.assert_allclose(np.asarray(jx), np.diag([21.0, 28.0]), rtol=1e-8)


def test_loop_hands_f_its_own_contiguous_arrays():
    # A view into a shared batch buffer (storage offset 3, 6, ...) made
    # as_strided(x, (2,), (1,), 0) read the buffer's first row: J was 0.
    torch = _torch()
    offsets = []

    def f(x, y):
        offsets.extend([x.storage_offset(), y.storage_offset()])
        return torch.as_strided(x, (2,), (1,), 0) * 3.0 + torch.as_strided(y, (1,), (1,), 0)

    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    y = torch.tensor([5.0, 6.0], dtype=torch.float64)
    jx, jy = nd.jacobian(f, x, y, argnums=(0, 1), evaluation="loop")
    np.testing.assert_allclose(jx.numpy(), 3.0 * np.eye(2, 3), rtol=1e-9)
    np.testing.assert_allclose(jy.numpy(), np.array([[1.0, 0.0], [1.0, 0.0]]), rtol=1e-9)
    assert set(offsets) == {0}


def test_a_vmap_bug_is_caught_not_returned():
    # torch's vmap of index_fill with a batched 0-d value gives every row the last row's
    # value: the Jacobian was silently wrong. "auto" warns and falls back to loop; an
    # explicit "vmap" raises naming the mode.
    torch = _torch()

    def f(x):
        out = torch.zeros(3, dtype=x.dtype)
        return out.index_fill(0, torch.tensor([1]), x[0] * 2.0) + x.sum()

    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    exact = np.ones((3, 3))
    exact[1, 0] = 3.0
    with pytest.warns(nd.EvaluationWarning, match="vmap disagrees with f.*Falling back"):
        jac = nd.jacobian(f, x)
    np.testing.assert_allclose(jac.numpy(), exact, rtol=1e-8)
    with pytest.raises(ValueError, match="evaluation='vmap'.*use evaluation='loop'"):
        nd.jacobian(f, x, evaluation="vmap")
    np.testing.assert_allclose(nd.jacobian(f, x, evaluation="loop").numpy(), exact, rtol=1e-8)


def test_round_off_between_batch_sizes_is_not_a_mismatch():
    # A batch of m may round differently from a batch of 1 (BLAS kernels): the sentinel
    # tolerance is sqrt(eps) relative, far above round-off, far below a real mismatch.
    from numdiffx.studies import make_mlp

    net = make_mlp("tanh")
    x = np.random.default_rng(0).standard_normal((20, 5)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jac = nd.jacobian(net, x, evaluation="batched")
    assert np.all(np.isfinite(jac))
