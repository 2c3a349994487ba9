"""The adaptive dense Jacobian in blocks of columns (memory bounded by memory_budget).

The tableau and its verify pass run on blocks of entries when the Jacobian's state would
exceed the budget; entries are independent, so every value, estimate, step and status
must be the same bit for bit as in one block.
"""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.strategies import tableau


def _dense_f(xp):
    def f(z):  # every output depends on every input, plus zero columns, a staircase
        # (the verify pass replaces its large-step slope) and a log near 0 (first levels
        # NaN)
        s = xp.sum(z[..., :-3], axis=-1, keepdims=True)
        body = xp.sin(z[..., :-3]) * s + z[..., :-3] ** 3
        stair = xp.floor(z[..., -3:-2]) + 0.0 * s
        lg = xp.log(z[..., -2:-1]) * (1.0 + 0.0 * s)
        return xp.concat([body, stair, lg, xp.exp(s) * z[..., -1:]], axis=-1)
    return f


@pytest.mark.parametrize("method", [nd.central(), nd.forward(), nd.central(order=4)],
                         ids=repr)
def test_blocks_give_the_same_bits_as_one_block(xb, method, monkeypatch):
    if xb.name.startswith("jax"):
        # eager jax compiles every new shape of every operation: ~40 s per layout of
        # blocks, on main too; the blocks are the same array-API code as on numpy, torch
        # and array_api_strict, and under jax.jit the tableau never runs in blocks
        pytest.skip("eager jax: ~40 s of compilation per block layout")
    xp = xb.xp
    f = _dense_f(xp)
    x = xb.asarray([0.3, -1.2, 0.7, 2.0, 0.05, -0.4, 9.5, 1e-4, 0.25])
    calls = []
    real = tableau._extrapolate

    def counting(*args, **kwargs):
        calls.append(kwargs["n_entries"])
        return real(*args, **kwargs)

    monkeypatch.setattr(tableau, "_extrapolate", counting)
    results = []
    for budget in (2**28, 12240):  # one block; blocks of 5 columns (34 * 8 B per element)
        calls.clear()
        with np.errstate(all="ignore"):
            r = nd.jacobian(f, x, step=nd.steps.adaptive(), method=method,
                            evaluation="batched", memory_budget=budget, full_output=True)
        results.append(r)
        assert calls[0] == (9 if budget > 12240 else 5)  # the blocks did run
    one, blocked = results
    for name in ("value", "error", "step", "status"):
        np.testing.assert_array_equal(xb.to_numpy(getattr(blocked, name)),
                                      xb.to_numpy(getattr(one, name)), err_msg=name)
    value = xb.to_numpy(one.value)
    assert value[6, 6] == 0.0  # floor's slope at 9.5: the verify pass, in blocks too
    # log near 0 (its first levels NaN): within its estimate
    assert abs(value[7, 7] - 1e4) <= xb.to_numpy(one.error)[7, 7]
