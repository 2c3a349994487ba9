"""Finite-difference stencils: small frozen objects with exact weights.

A stencil approximates the ``deriv``-th derivative of ``g(t)`` at ``t = 0`` as::

    g^(deriv)(0) ~= sum_k weights[k] * g(offsets[k] * h) / h**deriv

Weights are solved exactly in rational arithmetic (``fractions.Fraction``) from the
Taylor conditions, so polynomials of degree ``< len(offsets)`` are differentiated
exactly, up to floating-point rounding. The truncation order ``p`` (error ``O(h**p)``)
is computed exactly as well and drives the automatic step rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Any

__all__ = [
    "AbstractMethod",
    "ComplexStep",
    "Stencil",
    "backward",
    "central",
    "complex_step",
    "forward",
    "resolve_method",
]


class AbstractMethod:
    """Base of every differentiation method (a stencil or the complex step).

    Abstract: not instantiated. Concrete methods are frozen dataclasses carrying
    ``deriv`` (derivative order ``q``) and ``order`` (truncation order ``p``).
    """

    deriv: int
    order: int

    @property
    def step_constant(self) -> float:  # pragma: no cover - abstract
        """Error-balancing factor of the automatic step (see ``steps.auto``)."""
        raise NotImplementedError

    @property
    def points(self) -> tuple[tuple[Any, Any], ...]:
        """(offset, weight) pairs; the complex step is offset ``1j``, weight ``-1j``."""
        raise NotImplementedError  # pragma: no cover - abstract

    @property
    def roundoff_constant(self) -> float:
        """``C_r``: the round-off of the estimate is ``C_r * eps_f / h**q``."""
        raise NotImplementedError  # pragma: no cover - abstract

    @property
    def truncation_constant(self) -> float:
        """``C_t``: the truncation error is ``C_t * h**p * |f^(p+q)|``."""
        raise NotImplementedError  # pragma: no cover - abstract

    @property
    def reach(self) -> float:
        """Largest ``|offset|`` (at least 1): how far the stencil reaches, in steps."""
        return 1.0

    def with_deriv(self, deriv: int) -> AbstractMethod:  # pragma: no cover - abstract
        raise NotImplementedError


def _as_fraction(value: object, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise TypeError(
            f"{name} must hold ints, floats or fractions.Fraction values; got "
            f"{type(value).__name__}. Example: Stencil(offsets=(-1, 1), deriv=1)."
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value!r}.")
        # The decimal the user wrote, not the binary approximation of it.
        return Fraction(repr(value))
    return Fraction(value)


@lru_cache(maxsize=256)
def _solve_weights(offsets: tuple[Fraction, ...], deriv: int) -> tuple[Fraction, ...]:
    """Exact weights from the Taylor conditions sum_k w_k o_k^j / j! = [j == deriv]."""
    n = len(offsets)
    # Vandermonde system A w = b with A[j][k] = o_k**j, b[j] = deriv! * [j == deriv].
    a = [[o**j for o in offsets] + [Fraction(math.factorial(deriv)) if j == deriv else Fraction(0)]
         for j in range(n)]
    for col in range(n):  # Gauss-Jordan elimination, exact.
        pivot = next(r for r in range(col, n) if a[r][col] != 0)
        a[col], a[pivot] = a[pivot], a[col]
        inv = 1 / a[col][col]
        a[col] = [v * inv for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                factor = a[r][col]
                a[r] = [vr - factor * vc for vr, vc in zip(a[r], a[col])]
    return tuple(a[k][n] for k in range(n))


def _truncation_order(offsets: tuple[Fraction, ...], weights: tuple[Fraction, ...],
                      deriv: int) -> int:
    """Smallest p with a nonzero O(h**p) error term (exact arithmetic)."""
    j = len(offsets)
    while sum(w * o**j for w, o in zip(weights, offsets)) == 0:
        j += 1
        if j > len(offsets) + 64:  # pragma: no cover - impossible for distinct offsets
            break
    return j - deriv


@dataclass(frozen=True)
class Stencil(AbstractMethod):
    """Any finite-difference grid: ``Stencil(offsets=(-2, -1, 1, 2), deriv=1)``.

    Parameters
    ----------
    offsets : sequence of int, float or Fraction
        Distinct grid points in units of the step ``h``. ``0`` means ``f(x)``, which
        is evaluated once per call and reused.
    deriv : int
        Derivative order ``q >= 1``. At least ``deriv + 1`` offsets are required.

    Attributes
    ----------
    weights : tuple of Fraction
        Exact weights, one per offset.
    order : int
        Truncation order ``p``: the error is ``O(h**p)``.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> s = nd.Stencil(offsets=(-2, -1, 1, 2), deriv=1)
    >>> s.weights, s.order
    ((Fraction(1, 12), Fraction(-2, 3), Fraction(2, 3), Fraction(-1, 12)), 4)
    >>> x = np.array([0.5, 2.0])
    >>> bool(np.max(np.abs(nd.derivative(np.sin, x, method=s) - np.cos(x))) < 1e-12)
    True
    """

    offsets: tuple[Any, ...]  # numbers in, exact Fractions after __post_init__
    deriv: int = 1
    weights: tuple[Fraction, ...] = field(init=False, repr=False, compare=False)
    order: int = field(init=False, compare=False)
    #: ``"forward"``, ``"backward"`` or ``"central"`` for the named families (used to
    #: build the matching second-derivative stencil for Hessians), else ``None``.
    family: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.deriv, bool) or not isinstance(self.deriv, int):
            raise TypeError(f"deriv must be an int >= 1; got {self.deriv!r}.")
        if self.deriv < 1:
            raise ValueError(f"deriv must be >= 1; got {self.deriv}. Use deriv=1 for "
                             "first derivatives.")
        try:
            raw = tuple(self.offsets)
        except TypeError:
            raise TypeError("offsets must be a sequence of numbers, e.g. offsets=(-1, 1); "
                            f"got {type(self.offsets).__name__}.") from None
        offsets = tuple(_as_fraction(o, "offsets") for o in raw)
        if len(set(offsets)) != len(offsets):
            raise ValueError(f"offsets must be distinct; got {tuple(map(str, offsets))}.")
        if len(offsets) < self.deriv + 1:
            raise ValueError(
                f"a derivative of order deriv={self.deriv} needs at least {self.deriv + 1} "
                f"offsets; got {len(offsets)}. Add points, e.g. "
                f"offsets={tuple(range(-(self.deriv // 2 + 1), self.deriv // 2 + 2))}."
            )
        object.__setattr__(self, "offsets", offsets)
        weights = _solve_weights(offsets, self.deriv)
        # Drop points whose weight is exactly zero (e.g. 0 in central first derivatives).
        kept = tuple((o, w) for o, w in zip(offsets, weights) if w != 0)
        object.__setattr__(self, "weights", tuple(w for _, w in kept))
        object.__setattr__(self, "offsets", tuple(o for o, _ in kept))
        object.__setattr__(self, "order", _truncation_order(offsets, weights, self.deriv))

    @cached_property
    def roundoff_constant(self) -> float:
        """``C_r = sum |w_k|``: the round-off of the estimate is ``C_r eps_f / h**q``."""
        return float(sum(abs(w) for w in self.weights))

    @cached_property
    def truncation_constant(self) -> float:
        """``C_t = |sum w_k o_k**(p+q)| / (p+q)!``: truncation ``C_t h**p |f^(p+q)|``."""
        p, q = self.order, self.deriv
        c_t = abs(sum(w * o ** (p + q) for w, o in zip(self.weights, self.offsets)))
        return float(c_t / math.factorial(p + q))

    @cached_property
    def step_constant(self) -> float:
        """``(q C_r / (p C_t)) ** (1 / (p + q))``: the error-balancing step factor.

        With round-off ``C_r eps |f| / h**q`` and truncation ``C_t h**p |f^(p+q)|``
        (see :attr:`roundoff_constant`, :attr:`truncation_constant`), the total error is
        smallest at ``h = step_constant * eps**(1/(p+q))`` when ``|f^(p+q)| ~ |f|``:
        ``(3 eps)**(1/3)`` for central differences, ``2 sqrt(eps)`` for forward ones.
        """
        p, q = self.order, self.deriv
        c_r = sum(abs(w) for w in self.weights)
        c_t = abs(sum(w * o ** (p + q) for w, o in zip(self.weights, self.offsets)))
        c_t /= math.factorial(p + q)
        return float(q * c_r / (p * c_t)) ** (1.0 / (p + q))

    @cached_property
    def float_weights(self) -> tuple[float, ...]:
        """Weights as Python floats (computed once per stencil)."""
        return tuple(float(w) for w in self.weights)

    @cached_property
    def float_offsets(self) -> tuple[float, ...]:
        return tuple(float(o) for o in self.offsets)

    @cached_property
    def points(self) -> tuple[tuple[Any, Any], ...]:
        """(offset, weight) pairs as floats."""
        return tuple(zip(self.float_offsets, self.float_weights))

    @cached_property
    def reach(self) -> float:
        return max(1.0, *(abs(o) for o in self.float_offsets))

    @cached_property
    def diagnostics(self) -> tuple[int, tuple[float, ...], tuple[float, ...] | None]:
        """What the stencil's own points (with f(x)) say beyond its value, for the error
        estimate of one-step rules: ``(d, top, below)`` with ``d = len(points) - 1`` the
        highest derivative the points ``offsets + {0}`` determine, ``top`` the weights of
        the d-th derivative and ``below`` those of the (d-1)-th (None: f(x) itself), one
        per nonzero offset in order (f(x) is subtracted, so its weight is implied)."""
        points = tuple(sorted(set(self.offsets) | {Fraction(0)}))
        d = len(points) - 1
        nonzero = [o for o in self.offsets if o != 0]

        def weights(order: int) -> tuple[float, ...]:
            exact = dict(zip(points, _solve_weights(points, order)))
            return tuple(float(exact[o]) for o in nonzero)

        return d, weights(d), (weights(d - 1) if d > 1 else None)

    @cached_property
    def symmetric(self) -> bool:
        """Whether the offsets are symmetric about 0 (error series in even powers)."""
        return sorted(self.offsets) == sorted(-o for o in self.offsets)

    def with_deriv(self, deriv: int) -> Stencil:
        """The stencil of the same family and accuracy for another derivative order.

        Named families rebuild themselves (``central(order=2).with_deriv(2)`` is the
        classic 3-point second difference). A custom grid adds ``0`` to its offsets and
        must then hold enough points.
        """
        if deriv == self.deriv:
            return self
        if self.family == "forward":
            return forward(order=self.order, deriv=deriv)
        if self.family == "backward":
            return backward(order=self.order, deriv=deriv)
        if self.family == "central":
            return central(order=self.order, deriv=deriv)
        offsets = tuple(sorted(set(self.offsets) | {Fraction(0)}))
        if len(offsets) < deriv + 1:
            raise ValueError(
                f"the custom stencil with offsets {tuple(map(str, self.offsets))} has too few "
                f"points for a derivative of order {deriv}; pass a named method "
                "(method='central') or a Stencil with more offsets."
            )
        return Stencil(offsets=offsets, deriv=deriv)


def _check_deriv(deriv: object) -> int:
    if isinstance(deriv, bool) or not isinstance(deriv, int):
        raise TypeError(f"deriv must be an int >= 1; got {deriv!r}.")
    if deriv < 1:
        raise ValueError(f"deriv must be >= 1; got {deriv}. Use deriv=1 for first derivatives.")
    return deriv


def _check_order(order: object, *, even: bool, name: str) -> int:
    if isinstance(order, bool) or not isinstance(order, int):
        raise TypeError(f"{name}(order=...) must be an int; got {order!r}.")
    if order < 1 or (even and order % 2):
        wanted = "a positive even int (2, 4, 6, ...)" if even else "a positive int (1, 2, ...)"
        raise ValueError(f"{name}(order=...) must be {wanted}; got {order}. "
                         f"Example: {name}(order={2 if even else 1}).")
    return order


@lru_cache(maxsize=128)
def _named(family: str, offsets: tuple[int, ...], deriv: int) -> Stencil:
    """One shared instance per named stencil: frozen, so safe to reuse; its weights and
    constants are computed once instead of on every call."""
    return Stencil(offsets=offsets, deriv=deriv, family=family)


def forward(order: int = 1, deriv: int = 1) -> Stencil:
    """One-sided forward stencil of truncation order ``order``: offsets 0, 1, ...

    Parameters
    ----------
    order : int
        Truncation order ``p`` (>= 1): the error is ``O(h**p)``.
    deriv : int
        Derivative order ``q`` (>= 1).

    Returns
    -------
    Stencil
        Offsets ``0, 1, ..., p + q - 1`` with exact weights. ``f(x)`` (offset 0) is
        evaluated once per operation and reused, so first order costs one extra point.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> nd.forward(order=2).weights
    (Fraction(-3, 2), Fraction(2, 1), Fraction(-1, 2))
    >>> x = np.array([1.0])
    >>> err = abs(nd.derivative(np.exp, x, method=nd.forward(order=2))[0] - np.e)
    >>> bool(err < 1e-8)
    True
    """
    order = _check_order(order, even=False, name="forward")
    return _named("forward", tuple(range(order + _check_deriv(deriv))), deriv)


def backward(order: int = 1, deriv: int = 1) -> Stencil:
    """One-sided backward stencil (the report's "minus"): offsets 0, -1, ...

    Use it where f is undefined right of x. Parameters as :func:`forward`.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([1.0])                       # sqrt(2 - x) is undefined for x > 2
    >>> d = nd.derivative(lambda t: np.sqrt(2.0 - t), x, method=nd.backward(order=2))
    >>> bool(abs(d[0] + 0.5) < 1e-8)              # exact: -1 / (2 sqrt(2 - x)) = -0.5
    True
    """
    order = _check_order(order, even=False, name="backward")
    return _named("backward", tuple(-k for k in range(order + _check_deriv(deriv))), deriv)


def central(order: int = 2, deriv: int = 1) -> Stencil:
    """Symmetric stencil of even truncation order ``order``.

    Parameters
    ----------
    order : int
        Even truncation order ``p`` (2, 4, 6, ...): the error is ``O(h**p)``.
    deriv : int
        Derivative order ``q``. ``central(2, 2)`` is ``[1, -2, 1] / h**2``.

    Returns
    -------
    Stencil
        Offsets ``-k..k`` (0 omitted where its weight is 0) with exact weights.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> nd.central(order=2, deriv=2).weights
    (Fraction(1, 1), Fraction(-2, 1), Fraction(1, 1))
    >>> x = np.array([0.5, 2.0])
    >>> d4 = nd.derivative(np.sin, x, method=nd.central(order=4))
    >>> bool(np.max(np.abs(d4 - np.cos(x))) < 1e-12)
    True
    """
    order = _check_order(order, even=True, name="central")
    half = order // 2 + (_check_deriv(deriv) - 1) // 2
    return _named("central", tuple(range(-half, half + 1)), deriv)


@dataclass(frozen=True)
class ComplexStep(AbstractMethod):
    """Complex-step first derivative: ``f'(x) ~= Im f(x + i h) / h``.

    There is no subtractive cancellation, so the step can be tiny and the result is
    accurate to machine precision -- provided ``f`` is real-analytic and implemented
    with complex-safe operations (no ``abs``, ``conj``, ``real`` on the input path).
    Hessians use the mixed complex/central formula
    ``H_ij ~= Im[f(x + i h e_i + h e_j) - f(x + i h e_i - h e_j)] / (2 h h)``.
    """

    deriv: int = field(default=1, init=False)
    order: int = field(default=2, init=False)

    @property
    def step_constant(self) -> float:
        return 1.0  # unused: the complex step has no round-off term to balance

    @property
    def points(self) -> tuple[tuple[Any, Any], ...]:
        return ((1j, -1j),)

    @property
    def roundoff_constant(self) -> float:
        return 1.0  # no cancellation: the imaginary part carries f' h itself

    @property
    def truncation_constant(self) -> float:
        return 1.0 / 6.0  # Im f(x + ih) / h = f' - h**2 f^(3) / 6 + ...

    def with_deriv(self, deriv: int) -> ComplexStep:
        if deriv != 1:
            raise ValueError("complex_step() computes first derivatives only; use "
                             "method='central' for higher derivatives.")
        return self


_COMPLEX_STEP = ComplexStep()

#: The real direction of the complex-step Hessian,
#: ``Im[f(x + i h e_i + h e_j) - f(x + i h e_i - h e_j)] / (2 h h)``: central's first
#: difference (of the imaginary parts), whose step both directions take. Its own family
#: tells the default step rule that its round-off grows like ``1/h`` only (the imaginary
#: parts carry no cancellation of f), so it may step below the typical scale
#: (:class:`numdiffx.steps.auto`).
COMPLEX_HESSIAN_STEP = Stencil(offsets=(-1, 1), deriv=1, family="complex-hessian")
#: ... and its step floor, as a fraction of ``typical``: a parameter far below 1 (a
#: variance of 6.8e-5) is stepped on a tenth of the scale, as statsmodels'
#: ``approx_hess_cs`` does (``eps**(1/3) max(|x|, 0.1)``); the error estimate keeps the
#: scale ``max(|x|, 1)`` as f's (the floor is for the step's round-off, not a belief
#: that f varies faster)
COMPLEX_HESSIAN_FLOOR = 0.1


def complex_step() -> ComplexStep:
    """The complex-step method (first derivatives; Hessians via the mixed formula).

    ``f`` receives complex inputs ``x + i h`` and must be real-analytic and written with
    complex-safe operations; the result is accurate to machine precision.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 1.0, 2.0])
    >>> d = nd.derivative(np.exp, x, method=nd.complex_step())
    >>> bool(np.max(np.abs(d - np.exp(x)) / np.exp(x)) <= 4 * np.finfo(float).eps)
    True
    """
    return _COMPLEX_STEP


_METHOD_NAMES = {
    "forward": forward,
    "plus": forward,
    "backward": backward,
    "minus": backward,
    "central": central,
    "complex_step": complex_step,
    "complex": complex_step,
}


#: the method object of each name (frozen: one shared instance; no construction per call)
_BY_NAME: dict[str, AbstractMethod] = {}


def resolve_method(method: object) -> AbstractMethod:
    """Map the public ``method=`` argument (a string or a method object) to an object."""
    if isinstance(method, AbstractMethod):
        return method
    if isinstance(method, str):
        found = _BY_NAME.get(method)
        if found is not None:
            return found
        try:
            found = _BY_NAME[method] = _METHOD_NAMES[method]()  # type: ignore[operator]
            return found
        except KeyError:
            raise ValueError(
                f"method={method!r} is not known; use one of {sorted(_METHOD_NAMES)} or a "
                "method object such as nd.central(order=4) or nd.Stencil(offsets=(-1, 1))."
            ) from None
    raise TypeError(
        "method must be a string such as 'central' or a method object such as "
        f"nd.central(order=4); got {type(method).__name__}."
    )
