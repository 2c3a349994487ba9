"""numdifftools' own test assertions on derivatives as cases (see ``_peer_common``).

Read from numdifftools' tests (0.11.2) and re-expressed: each case names its test. The
example functions and their true derivatives come from ``numdifftools.example_functions``
(library code) at run time. Methods map onto numdiffx as follows: ``central``,
``forward``, ``backward`` with numdifftools' ``order`` onto the numdiffx stencil of that
family, order and derivative; ``complex``/``multicomplex`` onto ``complex_step`` for first
derivatives and Hessians, and onto ``central`` for derivatives of order >= 2 (numdiffx's
complex step is first order); ``central2`` onto ``central``. Options that only steer
numdifftools' own step generator (``MinStepGenerator``, ``num_extrap``, a base step) are
dropped: numdiffx runs with the step rule under test.

Left out, with the reason: numdifftools' internals (Richardson rule coefficients, step
generators, ``default_scale``, limits and residues, the multicomplex class, Fornberg's
weights and its complex-contour Taylor method to order 19), the wrappers of statsmodels /
scipy / algopy (``test_nd_statsmodels``, ``test_nd_scipy``, ``test_nd_algopy``: the same
functions through other libraries), and repeats that make the same numdiffx call
(``test_derivative_with_step_options``, the statsmodels variant of the first-order test,
the ``num_steps`` loops).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from _peer_common import (
    Answer,
    Case,
    allclose,
    almost_equal,
    error_of,
    guarded,
    value_ok,
)

import numdiffx as nd

SUITE = "numdifftools"


def _method(name: str, n: int = 1, order: int | None = None, hessian: bool = False) -> Any:
    """The numdiffx method for numdifftools' ``method``, ``n`` and ``order``."""
    if name in ("complex", "multicomplex") and (n == 1 or hessian):
        return nd.complex_step()
    family = {"forward": nd.forward, "backward": nd.backward}.get(name, nd.central)
    if order is None:
        return family(deriv=n)
    if family is nd.central and order % 2:
        order += 1
    return family(order=order, deriv=n)


def _ndt() -> Any:
    import numdifftools

    return numdifftools


def _peer(call: Any) -> Answer:
    """A numdifftools call: the estimate and its error estimate."""
    def convert(r: Any) -> Answer:
        if hasattr(r, "estimate"):
            return Answer(np.asarray(r.estimate), np.asarray(r.error_estimate))
        return Answer(np.asarray(r))
    return guarded(call, convert)


# -- test_example_functions.py ----------------------------------------------------------
MIN_DM = {"complex": 2, "forward": 2, "backward": 2, "central": 4}


def _decimals_judge(truth: float, method: str) -> Any:
    def judge(a: Answer) -> bool:
        err = float(np.max(error_of(a))) if a.ok else math.nan
        if not (a.ok and math.isfinite(err)):
            return False
        dm = max(int(-np.log10(err + 1e-16)) - 1, MIN_DM.get(method, 4))
        return almost_equal(a.value, truth, dm)
    return judge


def example_function_cases() -> list[Case]:
    from numdifftools.example_functions import function_names, get_function

    x = 0.5
    cases = []
    test = "test_example_functions.py::test_high_order_derivative"
    for name in function_names:
        for n in range(1, 11):
            f, true_df = get_function(name, n=n)
            if true_df is None:
                continue
            for method in ("complex", "central", "backward", "forward"):
                if n > 7 and method != "complex":
                    continue
                t = float(true_df(x))
                m = _method(method, n)
                cases.append(Case(
                    SUITE, test, f"{name} n={n} {method}",
                    functools.partial(_derivative, f, x, m),
                    _decimals_judge(t, method),
                    lambda f=f, method=method, n=n: _peer(lambda: _ndt().Derivative(
                        f, method=method, n=n, full_output=True)(x)),
                    truth=t, tags=(f"n={n}",)))
    test = "test_example_functions.py::test_first_order_derivative"
    for name in function_names:
        f, true_df = get_function(name, n=1)
        t = float(true_df(x))
        for method in ("complex", "central", "backward", "forward"):
            cases.append(Case(
                SUITE, test, f"{name} {method}",
                functools.partial(_derivative, f, x, _method(method)),
                lambda a, t=t: value_ok(a, lambda v: almost_equal(v, t, 7)),
                lambda f=f, method=method: _peer(lambda: _ndt().Derivative(
                    f, method=method)(x)), truth=t, tags=("n=1",)))
    return cases


def _derivative(f: Any, x: Any, method: Any, step: Any) -> Answer:
    return guarded(lambda: nd.derivative(f, np.asarray(x, dtype=float), method=method,
                                         step=step, full_output=True))


# -- test_numdifftools.py: TestDerivative -----------------------------------------------
def derivative_cases() -> list[Case]:
    cases = []
    test = "test_numdifftools.py::TestDerivative::test_high_order_derivative_cos"
    true_vals = (0.0, -1.0, 0.0, 1.0, 0.0, -1.0, 0.0)
    for method in ("complex", "multicomplex", "central", "forward", "backward"):
        n_max = {"multicomplex": 2, "central": 6}.get(method, 5)
        for n in range(1, n_max + 1):  # n = 0 (f itself) has no numdiffx counterpart
            for order in range(2, 9, 2):
                t = true_vals[n]
                cases.append(Case(
                    SUITE, test, f"n={n} {method} order={order}",
                    functools.partial(_derivative, np.cos, np.pi / 2, _method(method, n, order)),
                    lambda a, t=t: value_ok(a, lambda v: allclose(v, t, atol=1e-4)),
                    lambda n=n, order=order, method=method: _peer(lambda: _ndt().Derivative(
                        np.cos, n=n, order=order, method=method, full_output=True)(np.pi / 2)),
                    truth=t, tags=(f"n={n}",)))
    test = "test_numdifftools.py::TestDerivative::test_derivative_of_cos_x"
    # hypothesis draws x in [0, 10]; its three @example values, the ends and the middle
    for x in (7.6564547238847105, 8.9428143931508, 2.2204460492503134e-14, 0.0, 5.0, 10.0):
        true = (-np.sin(x), -np.cos(x), np.sin(x), np.cos(x)) * 2
        for method in ("complex", "central", "forward", "backward"):
            n_max = {"complex": 7, "central": 6}.get(method, 4)
            start, stop, step = {"central": (2, 7, 2), "complex": (2, 3, 1)}.get(
                method, (1, 5, 1))
            for n in range(1, n_max + 1):
                for order in range(start, stop, step):
                    t = float(true[n - 1])

                    def judge(a: Answer, t: float = t) -> bool:
                        if not a.ok:
                            return False
                        atol = 100 * float(np.max(error_of(a))) + 1e-14
                        return allclose(a.value, t, rtol=1e-6, atol=atol)

                    cases.append(Case(
                        SUITE, test, f"x={x:.6g} n={n} {method} order={order}",
                        functools.partial(_derivative, np.cos, x, _method(method, n, order)),
                        judge,
                        lambda x=x, n=n, order=order, method=method: _peer(
                            lambda: _ndt().Derivative(np.cos, n=n, order=order, method=method,
                                                      full_output=True)(x)),
                        truth=t, tags=(f"n={n}",)))
    cases += _additional_parameter_cases()
    cases += _small_derivative_cases()
    return cases


def _cube(x: Any, a: float = 1.0, b: float = 2.0) -> Any:
    return b * a * x * x * x


def _additional_parameter_cases() -> list[Case]:
    test = "test_numdifftools.py::TestDerivative::test_fun_with_additional_parameters"
    cases = []
    for dfun in ("Gradient", "Derivative", "Jacobian", "Hessdiag", "Hessian"):
        for method in ("forward", "backward", "central", "complex", "multicomplex"):
            second = dfun in ("Hessdiag", "Hessian")
            for x0, t, check in ((0.0, 0.0, {"atol": 1e-13}), (1.0, 12.0 if second else 6.0,
                                                                  {})):
                cases.append(Case(
                    SUITE, test, f"{dfun} {method} x={x0}",
                    functools.partial(_operation, dfun, _cube, x0,
                                      _method(method, hessian=second)),
                    lambda a, t=t, check=check: value_ok(a, lambda v: allclose(v, t, **check)),
                    lambda dfun=dfun, method=method, x0=x0: _peer(lambda: getattr(
                        _ndt(), dfun)(lambda x, a, b=1: b * a * x * x * x, method=method)(
                        x0, 1.0, b=2)),
                    truth=t))
    return cases


def _operation(kind: str, f: Any, x0: Any, method: Any, step: Any) -> Answer:
    """numdifftools' Gradient / Derivative / Jacobian / Hessdiag / Hessian of ``f`` at a
    point, as the numdiffx operation that computes the same array."""
    x = np.asarray(x0, dtype=float)

    def call() -> Any:
        if kind == "Derivative":
            return nd.derivative(f, x, method=method, step=step, full_output=True)
        if kind == "Gradient":
            return nd.gradient(f, x, method=method, step=step, full_output=True)
        if kind == "Jacobian":
            return nd.jacobian(f, x, method=method, step=step, full_output=True)
        r = nd.hessian(f, x, method=method, step=step, full_output=True)
        if kind == "Hessian":
            return r
        def diagonal(a: Any) -> Any:
            a = np.asarray(a)
            return a if a.ndim < 2 else np.diagonal(a)

        diag = (diagonal(r.value), None if r.error is None else diagonal(r.error),
                diagonal(r.status))
        return nd.DiffResult(diag[0], diag[1], r.step, r.nfev, diag[2])

    return guarded(call)


def _rosen(x: Any) -> Any:
    """numdifftools' own Rosenbrock function (``numdifftools.testing.rosen``: 105, not
    100, in front of the square)."""
    x = np.asarray(x)
    return (1 - x[0]) ** 2 + 105.0 * (x[1] - x[0] ** 2) ** 2


def _small_derivative_cases() -> list[Case]:
    t = "test_numdifftools.py::TestDerivative::"
    x_sin = np.linspace(0, 2.0 * np.pi, 13)
    v = np.array([1.0, -1.0]) / np.sqrt(2.0)
    D = _ndt_derivative
    rows: list[tuple[str, Any, Any, Any, Any]] = [
        ("test_derivative_cube", functools.partial(
            _derivative, lambda x: x * x * x, np.full((3, 2), 2.0), nd.central()),
         lambda a: value_ok(a, lambda v: allclose(v, 12.0, rtol=1e-8)), 12.0,
         lambda: D(lambda x: x * x * x, np.full((3, 2), 2.0))),
        ("test_derivative_exp", functools.partial(_derivative, np.exp, 0.0, nd.central()),
         lambda a: value_ok(a, lambda v: allclose(v, 1.0, rtol=1e-8)), 1.0,
         lambda: D(np.exp, 0.0)),
        ("test_derivative_sin", functools.partial(_derivative, np.sin, x_sin, nd.central()),
         lambda a: value_ok(a, lambda v: allclose(v, np.cos(x_sin), atol=1e-8)),
         np.cos(x_sin), lambda: D(np.sin, x_sin)),
        ("test_backward_derivative_on_sinh", functools.partial(
            _derivative, np.sinh, 0.0, nd.backward()),
         lambda a: value_ok(a, lambda v: allclose(v, 1.0)), 1.0,
         lambda: D(np.sinh, 0.0, method="backward")),
        ("test_central_and_forward_derivative_on_log (central)", functools.partial(
            _derivative, np.log, 0.001, nd.central()),
         lambda a: value_ok(a, lambda v: allclose(v, 1000.0)), 1000.0,
         lambda: D(np.log, 0.001, method="central", step=_min_steps())),
        ("test_central_and_forward_derivative_on_log (forward)", functools.partial(
            _derivative, np.log, 0.001, nd.forward()),
         lambda a: value_ok(a, lambda v: allclose(v, 1000.0)), 1000.0,
         lambda: D(np.log, 0.001, method="forward", step=_min_steps())),
        ("test_infinite_functions", functools.partial(
            _derivative, lambda x: np.inf * np.ones_like(x), 0.0, nd.central()),
         lambda a: value_ok(a, lambda v: bool(np.isnan(v))), None,
         lambda: D(lambda x: np.inf * np.ones_like(x), 0.0)),
        ("test_directional_diff", lambda step: guarded(lambda: nd.jvp(
            _rosen, np.array([2.0, 3.0]), v, step=step, full_output=True)),
         lambda a: value_ok(a, lambda v: allclose(v, 743.87633380824832)),
         743.87633380824832,
         lambda: _peer(lambda: _ndt().directionaldiff(_rosen, [2, 3], [1, -1]))),
    ]
    return [Case(SUITE, t + name.split(" ")[0], name, call, judge, peer, truth)
            for name, call, judge, truth, peer in rows]


def _ndt_derivative(f: Any, x: Any, **options: Any) -> Answer:
    return _peer(lambda: _ndt().Derivative(f, **options)(x))


def _min_steps() -> Any:
    return _ndt().MinStepGenerator(num_steps=15, offset=0, step_ratio=2)
