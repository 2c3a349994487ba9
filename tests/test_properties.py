"""Property-based tests (Hypothesis) over the public API (issue 9).

Each property is small (``max_examples``) so the whole file runs in well under a minute;
every regression the catalogue found is pinned with an ``@example``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")  # the test extra; a core install skips this module

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import numdiffx as nd  # noqa: E402

# Hypothesis writes a patch for failing examples with libcst, whose import raises a
# DeprecationWarning (an error under this suite's filterwarnings) and would abort the run.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # pragma: no cover - libcst not installed: nothing to pre-import
        pass

FAST = settings(max_examples=25, deadline=None)
finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
vectors = hnp.arrays(np.float64, st.integers(1, 4), elements=finite)


@FAST
@given(coeffs=st.lists(finite, min_size=1, max_size=5), x0=finite, order=st.sampled_from([2, 4]))
@example(coeffs=[0.0, 1.0], x0=0.0, order=2)
def test_polynomial_exactness(coeffs, x0, order):
    """A central stencil with N points differentiates degree < N polynomials exactly
    (up to rounding, relative to the polynomial's size): degree <= order here."""
    coeffs = coeffs[: order + 1]
    p = np.polynomial.Polynomial(coeffs)
    step = 0.5
    d = nd.derivative(p, np.array([x0]), method=nd.central(order=order), step=step)
    scale = sum(abs(c) * (abs(x0) + order * step) ** k for k, c in enumerate(coeffs)) + 1.0
    assert abs(d[0] - p.deriv()(x0)) <= 1e3 * np.finfo(float).eps * scale / step


@FAST
@given(x=vectors, a=finite, b=finite)
def test_linearity(x, a, b):
    """J(a f + b g) = a J(f) + b J(g) within rounding of the central stencil."""
    def f(v):
        return np.sin(v)

    def g(v):
        return v**3

    lhs = nd.jacobian(lambda v: a * f(v) + b * g(v), x)
    rhs = a * nd.jacobian(f, x) + b * nd.jacobian(g, x)
    np.testing.assert_allclose(lhs, rhs, atol=1e-6 * (1 + abs(a) + abs(b)) * (1 + np.max(x**2)))


@FAST
@given(x=vectors, seed=st.integers(0, 2**16))
def test_jacobian_times_v_equals_jvp(x, seed):
    """J(x) @ v = jvp(f, x, v) within the central tolerance."""
    v = np.random.default_rng(seed).standard_normal(x.shape)

    def f(u):
        return np.array([np.sum(np.sin(u) * u), np.prod(np.cos(u))])

    jac = nd.jacobian(f, x)
    _, jv = nd.jvp(f, x, v)
    np.testing.assert_allclose(jac @ v, jv, atol=1e-6 * (1 + np.max(np.abs(v))) * (1 + x.size))


@FAST
@given(x=vectors)
def test_hessian_is_symmetric_and_correct(x):
    """The Hessian is exactly symmetric and matches the analytic one of sum(x_i^2 x_j)."""
    def f(u):
        return np.sum(u) * np.sum(u**2)

    h = nd.hessian(f, x)
    np.testing.assert_array_equal(h, h.T)
    exact = 2 * np.sum(x) * np.eye(x.size) + 2 * (x[:, None] + x[None, :])
    np.testing.assert_allclose(h, exact, atol=1e-4 * (1 + np.max(np.abs(x))) ** 2)


@FAST
@given(x0=st.floats(-2.0, 2.0), order=st.sampled_from([1, 2, 4]))
def test_convergence_order(x0, order):
    """Halving h divides the truncation error by about 2**p (p = stencil order), in a
    regime (h ~ 1e-1..1e-2, f = exp) where truncation dominates rounding."""
    meth = nd.forward(order=order) if order == 1 else nd.central(order=order)
    errs = [abs(nd.derivative(np.exp, np.array([x0]), method=meth, step=h)[0] - np.exp(x0))
            for h in (0.1, 0.05)]
    ratio = errs[0] / errs[1]
    assert 2 ** order * 0.7 < ratio < 2 ** order * 1.4


@FAST
@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 3)), elements=finite))
def test_batched_equals_looped(x):
    """evaluation='batched' and 'loop' give the same Jacobian (same points, same order)."""
    def f(u):  # vectorised over any leading axes
        return np.sin(u) * np.sum(u, axis=-1, keepdims=True)

    a = nd.jacobian(f, x, evaluation="batched")
    b = nd.jacobian(f, x, evaluation="loop")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.complex128, np.int64, np.bool_])


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)),
       method=st.sampled_from(["central", "forward", "backward", "complex_step", "bogus"]),
       step=st.sampled_from([None, 1e-3, 0.0, -1.0, float("nan"), 1e-300, nd.steps.adaptive()]),
       op=st.sampled_from(["jacobian", "derivative", "hessian", "gradient"]))
@example(x=np.zeros(0), method="central", step=None, op="jacobian")  # empty input
@example(x=np.array([1e-9]), method="central", step=None, op="derivative")  # edge: one-sided
@example(x=np.array([0.0]), method="complex_step", step=None, op="jacobian")  # abs: refused
@example(x=np.array([1.0, 2.0]), method="central", step=np.float32(1e-3), op="jacobian")
@example(x=np.array([np.inf, 0.0]), method="central", step=None, op="derivative")  # inf - inf
@example(x=np.array(-1.79767743e308), method="central", step=None, op="jacobian")  # x+h overflow
@example(x=np.array(1.79767743e308), method="central", step=None, op="derivative")
@example(x=np.array([1.79767743e308, 1.0]), method="central", step=None, op="jacobian")
@example(x=np.array(np.inf, dtype=np.float32), method="complex_step", step=None, op="jacobian")
@example(x=np.array([1.3e154, 1e154]), method="central", step=nd.steps.adaptive(),
         op="hessian")  # sqrt(h_i * h_j) overflowed in the adaptive Hessian
@example(x=np.array([0.0, 1.0], dtype=np.float16), method="central", step=None, op="jacobian")
@example(x=np.array(1.58895126e+308), method="central", step=nd.steps.adaptive(),
         op="hessian")  # the tableau's h**2 overflowed (invalid value in its round-off)
def test_never_crashes_with_an_unexpected_exception(x, method, step, op):
    """Any generated dtype/shape/value/method/step: the call returns, or raises TypeError
    or ValueError with a message; non-finite values come back as NaN with a status."""
    def f(u):
        with np.errstate(all="ignore"):
            return np.sqrt(np.abs(u)) * np.sign(u) + np.log1p(np.abs(u))

    def scalar(u):
        with np.errstate(all="ignore"):
            return np.sum(np.abs(u) ** 1.5)

    fun = {"jacobian": nd.jacobian, "derivative": nd.derivative, "hessian": nd.hessian,
           "gradient": nd.gradient}[op]
    target = scalar if op in ("hessian", "gradient") else f
    try:
        res = fun(target, x, method=method, step=step, full_output=True)
    except (TypeError, ValueError) as exc:
        assert str(exc)
        return
    value, status = np.asarray(res.value), np.asarray(res.status)
    assert value.shape == status.shape
    bad = status == nd.Status.NON_FINITE
    assert np.all(np.isnan(value[bad]))
    ok = status == nd.Status.SUCCESS
    assert np.all(np.isfinite(value[ok]))


@pytest.mark.parametrize("evaluation", ["loop", "batched"])
@FAST
@given(x=vectors)
@example(x=np.array([1.0, 2.0]))  # f0 used to be computed on a view f could write into
def test_inputs_are_never_mutated(evaluation, x):
    """No operation writes into the caller's array, even when f writes into its argument."""
    before = x.copy()

    def rude(v):
        v *= 1.0 + 1e-3
        return v * 2.0

    jac = nd.jacobian(rude, x, evaluation=evaluation)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(jac, 2.0 * (1 + 1e-3) * np.eye(x.size), rtol=1e-6)
