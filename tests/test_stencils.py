import math
from fractions import Fraction as F

import pytest

import numdiffx as nd


@pytest.mark.parametrize(
    ("stencil", "offsets", "weights"),
    [
        (nd.forward(), (0, 1), (-1, 1)),
        (nd.backward(), (0, -1), (1, -1)),
        (nd.central(), (-1, 1), (F(-1, 2), F(1, 2))),
        (nd.forward(order=2), (0, 1, 2), (F(-3, 2), 2, F(-1, 2))),
        (nd.central(order=4), (-2, -1, 1, 2), (F(1, 12), F(-2, 3), F(2, 3), F(-1, 12))),
        (nd.central(deriv=2), (-1, 0, 1), (1, -2, 1)),
        (nd.central(order=4, deriv=2), (-2, -1, 0, 1, 2),
         (F(-1, 12), F(4, 3), F(-5, 2), F(4, 3), F(-1, 12))),
    ],
)
def test_known_weight_tables(stencil, offsets, weights):
    assert stencil.offsets == tuple(F(o) for o in offsets)
    assert stencil.weights == tuple(F(w) for w in weights)


@pytest.mark.parametrize(
    "stencil",
    [nd.forward(order=k) for k in (1, 2, 3)] + [nd.backward(order=k) for k in (1, 2)]
    + [nd.central(order=k) for k in (2, 4, 6)] + [nd.central(order=2, deriv=3),
                                                    nd.Stencil(offsets=(-1, F(1, 2), 2, 3))],
)
def test_polynomials_below_the_stencil_degree_are_exact(stencil):
    # sum_k w_k o_k**j = q! [j == q] for every j < number of (original) points
    q = stencil.deriv
    for degree in range(len(stencil.offsets)):
        value = sum(w * o**degree for w, o in zip(stencil.weights, stencil.offsets))
        assert value == (math.factorial(q) if degree == q else 0)


@pytest.mark.parametrize("order", [2, 4, 6, 8])
@pytest.mark.parametrize("deriv", [1, 3])
def test_central_weights_are_antisymmetric_for_odd_derivatives(order, deriv):
    s = nd.central(order=order, deriv=deriv)
    pairs = dict(zip(s.offsets, s.weights))
    for o, w in pairs.items():
        assert pairs[-o] == -w


@pytest.mark.parametrize(
    ("stencil", "order"),
    [(nd.forward(), 1), (nd.forward(order=3), 3), (nd.central(), 2), (nd.central(order=6), 6),
     (nd.central(deriv=2), 2), (nd.Stencil(offsets=(-2, -1, 1, 2)), 4)],
)
def test_truncation_order_is_exact(stencil, order):
    assert stencil.order == order


def test_step_constant_is_the_textbook_optimum():
    assert nd.central().step_constant == pytest.approx(3 ** (1 / 3))
    assert nd.forward().step_constant == pytest.approx(2.0)


def test_stencils_are_frozen_and_hashable():
    s = nd.central()
    with pytest.raises(AttributeError):
        s.deriv = 2  # type: ignore[misc]
    assert hash(s) == hash(nd.central())
    assert nd.central() == nd.central()


def test_with_deriv_keeps_the_family_and_order():
    assert nd.central(order=4).with_deriv(2) == nd.central(order=4, deriv=2)
    assert nd.forward(order=2).with_deriv(2).order == 2
    custom = nd.Stencil(offsets=(-1, 1))
    assert custom.with_deriv(2).offsets == (F(-1), F(0), F(1))


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: nd.central(order=3), ValueError, r"central\(order=\.\.\.\) must be a positive even"),
        (lambda: nd.forward(order=0), ValueError, r"forward\(order=\.\.\.\) must be a positive int"),
        (lambda: nd.forward(order=1.5), TypeError, r"forward\(order=\.\.\.\) must be an int"),
        (lambda: nd.Stencil(offsets=(1, 1)), ValueError, "offsets must be distinct"),
        (lambda: nd.Stencil(offsets=(1,)), ValueError, "needs at least 2 offsets"),
        (lambda: nd.Stencil(offsets=(0, 1), deriv=0), ValueError, "deriv must be >= 1"),
        (lambda: nd.Stencil(offsets=(0, 1), deriv=1.0), TypeError, "deriv must be an int"),
        (lambda: nd.Stencil(offsets=("a", 1)), TypeError, "offsets must hold ints"),
        (lambda: nd.Stencil(offsets=(float("nan"), 1)), ValueError, "offsets must be finite"),
        (lambda: nd.Stencil(offsets=3), TypeError, "offsets must be a sequence"),
        (lambda: nd.complex_step().with_deriv(2), ValueError, "first derivatives only"),
        (lambda: nd.forward().with_deriv(3) and nd.Stencil(offsets=(0, 1)).with_deriv(2),
         ValueError, "too few points"),
    ],
)
def test_invalid_methods_fail_at_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
