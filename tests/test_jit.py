"""Every step rule under jax.jit: traced once, no host-side decision, a DiffResult out."""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def _rnn(v):
    def step(c, xi):
        c = jnp.tanh(0.5 * c + xi)
        return c, c
    return jax.lax.scan(step, 0.0, v)[1]


FUNCTIONS = {
    "det": lambda v: jnp.linalg.det(jnp.outer(v, v) + jnp.eye(3)),
    "solve": lambda v: jnp.linalg.solve(jnp.eye(3) * 2 + jnp.outer(v, v), v),
    "gammaln": jax.scipy.special.gammaln,
    "softmax": jax.nn.softmax,
    "scan_rnn": _rnn,
}


@pytest.mark.slow  # a traced tableau (15 levels) takes seconds to compile per function
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_adaptive_jacobian_under_jit_matches_eager_and_autodiff(name):
    # the adaptive loop decided on the host which elements had converged:
    # TracerArrayConversionError under jit on every function tried
    f = FUNCTIONS[name]
    x = jnp.asarray([0.3, 0.7, 1.1])
    rule = nd.steps.adaptive()
    jitted = jax.jit(lambda v: nd.jacobian(f, v, step=rule))(x)
    eager = nd.jacobian(f, x, step=rule)
    exact = jax.jacfwd(f)(x)
    assert float(jnp.max(jnp.abs(jitted - exact))) <= 1e-11
    assert float(jnp.max(jnp.abs(eager - exact))) <= 1e-11


@pytest.mark.parametrize("step", [None, nd.steps.bound(), nd.steps.adaptive()],
                         ids=["auto", "bound", "adaptive"])
def test_every_rule_returns_a_diffresult_from_jit(step):
    x = jnp.asarray([0.3, 0.7, 1.1])
    res = jax.jit(lambda v: nd.jacobian(jnp.sin, v, step=step, full_output=True))(x)
    assert isinstance(res, nd.DiffResult) and res.nfev > 0
    np.testing.assert_allclose(np.asarray(res.value), np.diag(np.cos(np.asarray(x))),
                               atol=1e-9)
    assert res.success.all() and np.all(np.asarray(res.error) < 1e-8)


@pytest.mark.slow
def test_adaptive_operations_under_jit():
    x = jnp.asarray([0.3, 0.7, 1.1])
    rule = nd.steps.adaptive()
    d = jax.jit(lambda v: nd.derivative(jnp.exp, v, step=rule))(x)
    h = jax.jit(lambda v: nd.hessian(lambda u: jnp.sum(jnp.sin(u) ** 2), v, step=rule))(x)
    t = jax.jit(lambda v: nd.jvp(jnp.sin, v, v, step=rule)[1])(x)
    pattern = nd.SparsityPattern.from_any(np.eye(3, dtype=bool), (3, 3))
    s = jax.jit(lambda v: nd.jacobian(jnp.sin, v, step=rule, sparsity=pattern,
                                      sparse_output=False))(x)
    assert float(jnp.max(jnp.abs(d - jnp.exp(x)))) <= 1e-12
    exact_h = jax.hessian(lambda u: jnp.sum(jnp.sin(u) ** 2))(x)
    assert float(jnp.max(jnp.abs(h - exact_h))) <= 1e-9
    assert float(jnp.max(jnp.abs(t - jnp.cos(x) * x))) <= 1e-12
    assert float(jnp.max(jnp.abs(s - jnp.diag(jnp.cos(x))))) <= 1e-12


def test_adaptive_bounds_under_jit_are_refused_clearly():
    with pytest.raises(ValueError, match="bounds=.*jax.jit does not know while tracing"):
        jax.jit(lambda v: nd.derivative(jnp.log, v,
                                        step=nd.steps.adaptive(bounds=(0.0, 10.0))))(
            jnp.asarray([0.5, 1.0]))
