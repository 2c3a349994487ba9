"""Every validation error names the parameter and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd

X = np.array([1.0, 2.0])


def _sq(x):
    return x**2


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: nd.jacobian(_sq, X, method="sideways"), ValueError, "method='sideways' is not known"),
        (lambda: nd.jacobian(_sq, X, method=3), TypeError, "method must be a string"),
        (lambda: nd.jacobian(_sq, X, step=0.0), ValueError, r"step=0.0 must be a positive finite"),
        (lambda: nd.jacobian(_sq, X, step=-1e-3), ValueError, r"step=-0.001 must be a positive"),
        (lambda: nd.jacobian(_sq, X, step=float("nan")), ValueError, "positive finite"),
        (lambda: nd.jacobian(_sq, X, step=float("inf")), ValueError, "positive finite"),
        (lambda: nd.jacobian(_sq, X, step="tiny"), ValueError, "step='tiny' is not known"),
        (lambda: nd.jacobian(_sq, X, step=[1e-3]), TypeError, "step must be None, 'auto'"),
        (lambda: nd.steps.relative(0), ValueError, r"relative\(scale\) must be a positive"),
        (lambda: nd.steps.auto(typical=-1), ValueError, r"auto\(typical=\.\.\.\)"),
        (lambda: nd.steps.auto(scale_with_x="yes"), TypeError, "scale_with_x"),
        (lambda: nd.jacobian(_sq, X, evaluation="parallel"), ValueError,
         "evaluation='parallel' is not known"),
        (lambda: nd.jacobian(_sq, X, evaluation="vmap"), ValueError,
         "evaluation='vmap' is not available for numpy"),
        (lambda: nd.jacobian(_sq, X, chunk_size=0), ValueError, "chunk_size must be None"),
        (lambda: nd.jacobian(_sq, X, memory_budget=-5), ValueError, "memory_budget must be"),
        (lambda: nd.jacobian(_sq(X), X), TypeError, "f must be callable"),
        (lambda: nd.jacobian(_sq), TypeError, "at least one positional argument"),
        (lambda: nd.jacobian(_sq, X, argnums=2), ValueError, "argnums=2 is out of range"),
        (lambda: nd.jacobian(_sq, X, argnums="0"), TypeError, "argnums must be an int"),
        (lambda: nd.jacobian(lambda x, y: x, X, X, argnums=(0, 0)), ValueError,
         "must not repeat"),
        (lambda: nd.jacobian(_sq, X, argnums=()), ValueError, "argnums must not be empty"),
        (lambda: nd.jacobian(_sq, "abc"), TypeError, "args\\[0\\] must be an array"),
        (lambda: nd.hessian(np.sum, X.astype(np.float16)), TypeError, "16-bit float.*float32"),
        (lambda: nd.jacobian(_sq, X + 0j, method="complex_step"), TypeError,
         "complex-step method needs real inputs"),
        (lambda: nd.jacobian(lambda x: x + 1j, X, method="complex_step"), TypeError,
         "needs a real-valued f"),
        (lambda: nd.jacobian(lambda x: {"y": "a"}, X), TypeError,  # a dict of arrays: a tree
         r"leaf out\['y'\] is a str; every leaf of f's value must be an array"),
        (lambda: nd.jacobian(lambda x: None, X), TypeError, "f must return an array"),
        (lambda: nd.jacobian(lambda x: x[:1], X, evaluation="batched"), ValueError,
         r"for a batch of 4 perturbed points plus x \(5 rows\); expected \(5, 2\)"),
        (lambda: nd.jacobian(lambda x: x.sum(), X, evaluation="batched"), ValueError,
         "leading batch axis"),
        (lambda: nd.jacobian(lambda x: x[x > 1.0], X, evaluation="loop"), ValueError,
         "output shape must not depend on x"),
        (lambda: nd.jacobian(_sq, X, method=nd.central(deriv=2)), ValueError,
         "jacobian needs a first-derivative method"),
        (lambda: nd.gradient(_sq, X), ValueError, "gradient needs a scalar-valued f"),
        (lambda: nd.hessian(lambda x, y: x.sum(), X, X, argnums=(0, 1)), TypeError,
         "hessian takes one argnums int"),
        (lambda: nd.jvp(_sq, (X, X), (X,)), ValueError, "same length"),
        (lambda: nd.jvp(_sq, X, np.ones(3)), ValueError, r"tangents\[0\] has shape \(3,\)"),
        (lambda: nd.derivative(lambda x: x.sum(), X), ValueError,
         "derivative needs an elementwise f"),
        (lambda: nd.jacobian(lambda x, y: x * y, X, X.astype(np.float32), argnums=(0, 1))
         and nd.jvp(lambda x, y: x * y, (X, X.astype(np.float32)), (X, X)), TypeError,
         "different dtypes"),
    ],
)
def test_errors_name_the_parameter_and_the_fix(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_integer_inputs_are_differentiated_in_the_default_float():
    jac = nd.jacobian(lambda x: x * 3.0, np.array([1, 2]))
    assert jac.dtype == np.float64
    np.testing.assert_allclose(jac, 3.0 * np.eye(2), rtol=1e-9)


def test_python_scalars_and_lists_are_accepted():
    assert abs(float(nd.derivative(lambda x: x**2, 3.0)) - 6.0) < 1e-8
    np.testing.assert_allclose(nd.jacobian(lambda x: x * 2.0, [1.0, 2.0]), 2 * np.eye(2),
                               rtol=1e-9)


def test_read_only_and_non_contiguous_inputs_are_not_mutated():
    base = np.arange(12.0).reshape(3, 4)
    view = base[:, ::2]  # non-contiguous
    base.setflags(write=False)
    before = view.copy()
    jac = nd.jacobian(lambda x: x**2, view)
    np.testing.assert_array_equal(view, before)
    np.testing.assert_allclose(jac.reshape(6, 6), np.diag(2 * before.ravel()), rtol=1e-8)


def test_a_function_that_mutates_its_input_cannot_touch_the_callers_array():
    x = np.array([1.0, 2.0])

    def rude(v):
        v *= 2.0
        return v

    nd.jacobian(rude, x, evaluation="loop")
    np.testing.assert_array_equal(x, [1.0, 2.0])
