"""numdifftools' own test assertions on Jacobians, gradients, Hessians and complex inputs
as cases (see ``_peer_common``; the method mapping is ``_peer_ndt_derivatives``')."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from _peer_common import Answer, Case, allclose, error_of, guarded, nd_answer, raises, value_ok
from _peer_ndt_derivatives import SUITE, _method, _ndt, _operation, _peer, _rosen

import numdiffx as nd

T = "test_numdifftools.py::"


def _jac(f: Any, x: Any, method: Any, step: Any) -> Answer:
    return guarded(lambda: nd.jacobian(f, np.asarray(x, dtype=float), method=method,
                                       step=step, full_output=True))


def _columns(f: Any, x: Any, method: Any, step: Any) -> Answer:
    """numdifftools differentiates every column of a 2-d x (trailing axis) separately and
    stacks the Jacobians on the last axis: one numdiffx Jacobian per column."""
    x = np.asarray(x, dtype=float)
    parts = [_jac(f, x[:, k], method, step) for k in range(x.shape[1])]
    bad = next((p for p in parts if not p.ok), None)
    if bad is not None:
        return bad
    stack = [np.stack([getattr(p, a) for p in parts], axis=-1) for a in ("value", "error",
                                                                          "status")]
    return Answer(stack[0], stack[1], stack[2], sum(p.nfev for p in parts))


def _xyz(x: Any) -> Any:
    return x[0] * x[1] * x[2] + np.exp(x[0]) * x[1]


XDATA = np.arange(0, 1, 0.1)
YDATA = 1 + 2 * np.exp(0.75 * XDATA)


def _residual2(c: Any) -> Any:
    return (c[0] + c[1] * np.exp(c[2] * XDATA) - YDATA) ** 2


def _two(x: Any) -> Any:
    return np.array([x[0] ** 2 + x[1] ** 2, x[0] ** 3 + x[1] ** 3])


def _stack3(x: Any) -> Any:
    return np.array([x, x**2, x**3]).ravel()


def jacobian_cases() -> list[Case]:
    cases = []
    methods5 = ("multicomplex", "complex", "central", "forward", "backward")
    test = T + "TestJacobian::test_scalar_to_vector"
    for val in (-1000.0, -10.5, -1.0, 0.0, 1e-3, 1.0, 10.5, 1000.0):  # hypothesis: [-1e3, 1e3]
        truth = np.array([[1.0], [2 * val], [3 * val**2]])
        for method in methods5:
            cases.append(Case(
                SUITE, test, f"x={val} {method}",
                functools.partial(_jac, _stack3, [val], _method(method)),
                lambda a, t=truth: value_ok(a, lambda v: allclose(v, t, rtol=1e-3, atol=1e-6)),
                lambda val=val, method=method: _peer(lambda: _ndt().Jacobian(
                    _stack3, method=method)(val)), truth=truth))
    test = T + "TestJacobian::test_on_scalar_function"
    truth = np.array([135.42768462, 41.08553692, 15.0])
    for method in ("complex", "central", "forward", "backward"):
        cases.append(Case(
            SUITE, test, method, functools.partial(_jac, _xyz, [3.0, 5.0, 7.0], _method(method)),
            lambda a, truth=truth: value_ok(a, lambda v: allclose(v, truth)),
            lambda method=method: _peer(lambda: _ndt().Jacobian(_xyz, method=method)(
                [3.0, 5.0, 7.0])), truth=truth))
    test = T + "TestJacobian::test_on_vector_valued_function"
    for method in ("complex", "central", "forward", "backward"):
        for order in (2, 4):
            m = _method(method, 1, order) if method != "complex" else nd.complex_step()
            cases.append(Case(
                SUITE, test, f"{method} order={order}",
                functools.partial(_jac, _residual2, [1.0, 2.0, 0.75], m),
                lambda a: value_ok(a, lambda v: allclose(v, 0.0, atol=1e-12)),
                lambda method=method, order=order: _peer(lambda: _ndt().Jacobian(
                    _residual2, method=method, order=order)([1, 2, 0.75])),
                truth=np.zeros((XDATA.size, 3))))
    test = T + "TestJacobian::test_on_matrix_valued_function"
    x24 = np.array([(1, 2, 3, 4), (5, 6, 7, 8)], dtype=float)
    j24 = np.array([[2 * x24[0], 2 * x24[1]], [3 * x24[0] ** 2, 3 * x24[1] ** 2]])
    for x, truth, call in (([1.0, 2.0], np.array([[2.0, 4.0], [3.0, 12.0]]), _jac),
                           ([3.0, 4.0], np.array([[6.0, 8.0], [27.0, 48.0]]), _jac),
                           (x24, j24, _columns)):
        cases.append(Case(
            SUITE, test, f"x={np.asarray(x).tolist()}",
            functools.partial(call, _two, x, nd.central()),
            lambda a, t=truth: value_ok(a, lambda v: allclose(v, t)),
            lambda x=x: _peer(lambda: _ndt().Jacobian(_two)(x)), truth=truth))
    cases.append(Case(
        SUITE, T + "TestJacobian::test_issue_68", "",
        functools.partial(_jac, lambda x: np.array([np.sum(x**2) - 1]), [1.0, 2.0],
                          nd.central()),
        lambda a: value_ok(a, lambda v: allclose(v, [[2.0, 4.0]])),
        lambda: _peer(lambda: _ndt().Jacobian(lambda x: np.array([np.sum(x**2) - 1]))(
            np.array([1.0, 2.0]))), truth=np.array([[2.0, 4.0]])))

    def g_fun(x: Any) -> Any:
        return np.stack([x, x])

    def fun3(x: Any) -> Any:
        return np.vstack((x[0] * x[1] * x[2] ** 2, x[0] * x[1] * x[2]))

    x3 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).T
    t3 = np.array([[[18.0, 180.0], [9.0, 144.0], [12.0, 240.0]],
                   [[6.0, 30.0], [3.0, 24.0], [2.0, 20.0]]])
    eye2 = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    cases += [
        Case(SUITE, T + "TestJacobian::test_issue_25", "g_fun",
             functools.partial(_jac, g_fun, [1.0, 2.0], nd.central()),
             lambda a: value_ok(a, lambda v: allclose(v, eye2)),
             lambda: _peer(lambda: _ndt().Jacobian(g_fun)(np.array([1.0, 2.0]))), truth=eye2),
        Case(SUITE, T + "TestJacobian::test_issue_25", "fun3",
             functools.partial(_fun3_columns, fun3, x3),
             lambda a: value_ok(a, lambda v: allclose(v, t3)),
             lambda: _peer(lambda: _ndt().Jacobian(fun3)(x3)), truth=t3),
    ]
    for kind in ("Jacobian", "Gradient"):
        cases.append(Case(
            SUITE, T + f"Test{kind}::test_{kind.lower()}_fulloutput", "x + y at (1, 3)",
            lambda step, kind=kind: guarded(lambda: getattr(nd, kind.lower())(
                lambda x, y: x + y, 1.0, 3.0, step=step, full_output=True)),
            lambda a: value_ok(a, lambda v: allclose(v, 1.0))
            and bool(np.all(error_of(a) < 1e-13)),
            lambda kind=kind: _peer(lambda: getattr(_ndt(), kind)(
                lambda x, y: x + y, full_output=True)(1, 3)), truth=1.0))
    return cases + gradient_cases()


def _fun3_columns(fun3: Any, x: Any, step: Any) -> Answer:
    """numdifftools' layout for fun3 at a (3, 2) x: (output, input, column)."""
    return _columns(lambda v: fun3(v)[:, 0], x, nd.central(), step)


def gradient_cases() -> list[Case]:
    def fun39(x: Any) -> Any:
        return 1.0 / (np.exp(x[0]) + np.cos(x[1]) + 10)

    truth39 = np.array([-0.017961123762187736, 0.0060082083648822])
    v = np.array([1.0, -1.0]) / np.sqrt(2.0)
    cases = [
        Case(SUITE, T + "TestGradient::test_issue_39", "multicomplex",
             lambda step: guarded(lambda: nd.gradient(fun39, np.array([1.0, 2.0]),
                                                      method="complex_step", step=step,
                                                      full_output=True)),
             lambda a: value_ok(a, lambda v: allclose(v, truth39)),
             lambda: _peer(lambda: _ndt().Gradient(fun39, method="multicomplex")([1.0, 2.0])),
             truth=truth39),
        Case(SUITE, T + "TestGradient::test_directional_diff", "gradient . v",
             lambda step: _dot(guarded(lambda: nd.gradient(
                 _rosen, np.array([2.0, 3.0]), step=step, full_output=True)), v),
             lambda a: value_ok(a, lambda val: allclose(val, 743.87633380824832)),
             lambda: _dot(_peer(lambda: _ndt().Gradient(_rosen)([2, 3])), v),
             truth=743.87633380824832),
    ]
    for method in ("multicomplex", "complex", "central", "backward", "forward"):
        for order in (2, 4):
            m = _method(method, 1, order)
            cases.append(Case(
                SUITE, T + "TestGradient::test_gradient", f"{method} order={order}",
                lambda step, m=m: guarded(lambda: nd.gradient(
                    lambda x: np.sum(x**2), np.array([1.0, 2.0, 3.0]), method=m, step=step,
                    full_output=True)),
                lambda a: value_ok(a, lambda v: allclose(v, [2.0, 4.0, 6.0])),
                lambda method=method, order=order: _peer(lambda: _ndt().Gradient(
                    lambda x: np.sum(x**2), method=method, order=order)([1, 2, 3])),
                truth=np.array([2.0, 4.0, 6.0])))
    return cases


def _dot(a: Answer, v: Any) -> Answer:
    if not a.ok:
        return a
    err = None if a.error is None else np.abs(a.error) @ np.abs(v)
    status = None if a.status is None else np.max(a.status)
    return Answer(np.asarray(a.value) @ v, err, status, a.nfev)


# -- Hessdiag, Hessian ---------------------------------------------------------------------
def _poly3(x: Any) -> Any:
    return x[0] + x[1] ** 2 + x[2] ** 3


def hessian_cases() -> list[Case]:
    cases = []
    methods6 = ("central2", "central", "multicomplex", "complex", "forward", "backward")
    cases.append(Case(
        SUITE, T + "TestHessdiag::test_complex", "complex at [1, 2, 3]",
        functools.partial(_operation, "Hessdiag", _poly3, [1.0, 2.0, 3.0], nd.complex_step()),
        lambda a: value_ok(a, lambda v: allclose(v, [0.0, 2.0, 18.0])),
        lambda: _peer(lambda: _ndt().Hessdiag(_poly3, method="complex", step=_ndt(
            ).MinStepGenerator(num_steps=3, use_exact_steps=True, step_ratio=2.0, offset=4))(
            [1, 2, 3])), truth=np.array([0.0, 2.0, 18.0])))
    # hypothesis draws x in [-100, 100]**3; its @example points
    for vals in ((0.0, 16.003907623933742, 68.02057249966789), (1.0, 2.0, 3.0),
                 (1.2009289063e-314,) * 3, (88.01663712016305,) * 3,
                 (0.0, 19.945812226807096, 54.11322414875562)):
        htrue = np.array([0.0, 2.0, 6 * vals[2]])
        for order in (2, 4, 6):
            for method in methods6:
                m = _method(method, 1, order, hessian=True)

                def judge(a: Answer, htrue: Any = htrue) -> bool:
                    atol = 100 * float(np.max(error_of(a))) if a.ok else np.nan
                    return value_ok(a, lambda v: allclose(v, htrue, rtol=1e-5, atol=atol))

                def peer(vals: Any = vals, order: int = order, method: str = method) -> Answer:
                    steps = _ndt().MinStepGenerator(num_steps=order + 1, use_exact_steps=True,
                                                    step_ratio=3.0, offset=0)
                    return _peer(lambda: _ndt().Hessdiag(_poly3, step=steps, method=method,
                                                         order=order, full_output=True)(vals))

                cases.append(Case(
                    SUITE, T + "TestHessdiag::test_fixed_step",
                    f"x={vals[2]:.6g} {method} order={order}",
                    functools.partial(_operation, "Hessdiag", _poly3, vals, m), judge, peer,
                    truth=htrue))
    for order in (2, 4, 6):
        for method in methods6:
            m = _method(method, 1, order, hessian=True)

            def judge2(a: Answer) -> bool:
                tol = min(1e-8, float(np.max(error_of(a)))) if a.ok else np.nan
                return value_ok(a, lambda v: allclose(v, [0.0, 2.0, 18.0], atol=tol))

            cases.append(Case(
                SUITE, T + "TestHessdiag::test_default_step", f"{method} order={order}",
                functools.partial(_operation, "Hessdiag", _poly3, [1.0, 2.0, 3.0], m), judge2,
                lambda method=method, order=order: _peer(lambda: _ndt().Hessdiag(
                    _poly3, method=method, order=order, full_output=True)([1, 2, 3])),
                truth=np.array([0.0, 2.0, 18.0])))
    return cases + _hessian_cases()


def _cos_xy(xy: Any) -> Any:
    return np.cos(xy[0] - xy[1])


def _xyz_h(x: Any) -> Any:
    return np.array([[np.exp(x[0]) * x[1], np.exp(x[0]) + x[2], x[1]],
                     [np.exp(x[0]) + x[2], 0, x[0]], [x[1], x[0], 0]])


def _cossin(xy: Any) -> Any:
    return np.array([np.cos(xy[0] * xy[1]), np.sin(xy[0] * xy[1])])


def _cossin_h(xy: Any) -> Any:
    x, y = xy
    c, s = np.cos(x * y), np.sin(x * y)
    return np.array([[[-y * y * c, -x * y * c - s], [-x * y * c - s, -x * x * c]],
                     [[-y * y * s, c - x * y * s], [c - x * y * s, -x * x * s]]])


def _hessian_cases() -> list[Case]:
    cases = []
    htrue = np.array([[-1.0, 1.0], [1.0, -1.0]])
    for method in ("multicomplex", "complex", "central", "central2", "forward", "backward"):
        m = _method(method, hessian=True)
        cases.append(Case(
            SUITE, T + "TestHessian::test_hessian_cos_x_y_at_0_0", method,
            functools.partial(_operation, "Hessian", _cos_xy, [0.0, 0.0], m),
            lambda a: value_ok(a, lambda v: allclose(v, htrue)),
            lambda method=method: _peer(lambda: _ndt().Hessian(
                _cos_xy, method=method, step=_ndt().MinStepGenerator(num_steps=10))([0, 0])),
            truth=htrue))
    x3 = np.array([3.0, 5.0, 7.0])
    for method in ("complex", "central", "forward", "backward"):
        cases.append(Case(
            SUITE, T + "TestHessian::test_on_scalar_function", method,
            functools.partial(_operation, "Hessian", _xyz, x3, _method(method, hessian=True)),
            lambda a: value_ok(a, lambda v: allclose(v, _xyz_h(x3), atol=1e-4)),
            lambda method=method: _peer(lambda: _ndt().Hessian(_xyz, method=method)(x3)),
            truth=_xyz_h(x3)))
    x2 = np.array([3.0, 5.0])
    for method in ("complex", "central", "central2", "forward", "backward"):
        cases.append(Case(
            SUITE, T + "TestHessian::test_on_vector_valued_function", method,
            functools.partial(_operation, "Hessian", _cossin, x2, _method(method, hessian=True)),
            lambda a: value_ok(a, lambda v: allclose(v, _cossin_h(x2), atol=1e-4)),
            lambda method=method: _peer(lambda: _ndt().Hessian(_cossin, method=method)(x2)),
            truth=_cossin_h(x2)))
    cases += _hamiltonian_cases() + _complex_cases()
    return cases


@functools.lru_cache(maxsize=1)
def _hamiltonian() -> tuple[Any, Any, Any]:
    """The 2-ion Hamiltonian of numdifftools' tests (``tests/hamiltonian.py`` defines it;
    its potential and the minimiser are recomputed here from the same constants)."""
    from scipy import constants, optimize

    w = 2 * np.pi * 1e6
    c = (4 * np.pi * constants.epsilon_0) ** -1 * constants.e ** 2
    m = 39.96 * 1.66e-27

    def potential(x: Any) -> Any:
        return 0.5 * m * w**2 * (x[0] ** 2 + x[1] ** 2) + c / np.sqrt((x[0] - x[1]) ** 2)

    xopt = optimize.fmin(potential, np.array([-0.5, 0.5]), xtol=1e-10, disp=False)
    true_h = np.array([[5.23748385e-12, -2.61873829e-12], [-2.61873829e-12, 5.23748385e-12]])
    return potential, xopt, true_h


def _hamiltonian_cases() -> list[Case]:
    def nd_call(method: Any, step: Any) -> Answer:
        potential, xopt, _ = _hamiltonian()
        return _operation("Hessian", potential, xopt, method, step)

    def peer(method: str) -> Answer:
        potential, xopt, _ = _hamiltonian()
        return _peer(lambda: _ndt().Hessian(potential, method=method, step=_ndt(
        ).MaxStepGenerator(base_step=1e-4))(xopt))

    def judge(a: Answer) -> bool:
        true_h = _hamiltonian()[2]
        return value_ok(a, lambda v: bool(np.all(np.abs((v - true_h) / true_h) < 1e-4)))

    true_h = np.array([[5.23748385e-12, -2.61873829e-12], [-2.61873829e-12, 5.23748385e-12]])
    return [Case(SUITE, T + "TestHessian::test_run_hamiltonian", method,
                 functools.partial(nd_call, _method(method, hessian=True)), judge,
                 functools.partial(peer, method), truth=true_h)
            for method in ("central", "complex")]


def _complex_cases() -> list[Case]:
    """Complex-valued f and complex x (``TestHessian::test_complex_hessian_issue_35``,
    ``test_invalid_outputs.py``, ``test_jacobian_complex_validation.py``)."""
    cases = []
    rng = np.random.default_rng(35)
    base = rng.standard_normal(3)

    def foo(x: Any) -> Any:
        return 1j * np.sum(x * x)

    for method in ("multicomplex", "complex", "central", "central2", "forward", "backward"):
        for offset in (0, 1j):
            x = base + offset
            m = _method(method, hessian=True)
            if method.endswith("complex"):
                judge: Any = raises((ValueError, TypeError))
            else:
                def judge(a: Answer) -> bool:
                    return value_ok(a, lambda v: allclose(v, 2j * np.eye(3), atol=1e-11))
            cases.append(Case(
                SUITE, T + "TestHessian::test_complex_hessian_issue_35",
                f"{method} x {'complex' if offset else 'real'}",
                lambda step, x=x, m=m: guarded(lambda: nd.hessian(
                    foo, x, method=m, step=step, full_output=True)),
                judge, lambda x=x, method=method: _peer(lambda: _ndt().Hessian(
                    foo, method=method)(x)), truth=2j * np.eye(3)))
    t = "test_invalid_outputs.py::test_valid_derivatives_unchanged_by_invalid_output"
    xs = np.array([0.5, 1.0, 5.0])
    valid = np.array([True, False, True])
    for method in ("central", "forward", "backward"):
        for n in (1, 2):
            m = _method(method, n)
            cases.append(Case(
                SUITE, t, f"{method} n={n}",
                lambda step, m=m: _masked(xs, valid, m, step),
                lambda a: a.ok and bool(a.value[0]), None, truth=None))
    t = "test_jacobian_complex_validation.py::"
    for kind in ("jacobian", "gradient"):
        calls: list[Any] = []

        def counted(x: Any, calls: list[Any] = calls) -> Any:
            calls.append(x)
            return np.sum((1 + 1j) * x**2)

        cases += [
            Case(SUITE, t + "test_complex_output_rejected_before_perturbation", kind,
                 lambda step, kind=kind, counted=counted, calls=calls: _once(
                     kind, counted, calls, step),
                 lambda a: a.ok and bool(a.value[0]), None),
            Case(SUITE, t + "test_complex_variable_rejected", kind,
                 lambda step, kind=kind: guarded(lambda: getattr(nd, kind)(
                     lambda x: np.sum(x**2), np.array([1j, 2.0]), method="complex_step",
                     step=step)), raises((ValueError, TypeError)), None),
            Case(SUITE, t + "test_real_valued_function_still_accepted", kind,
                 lambda step, kind=kind: guarded(lambda: getattr(nd, kind)(
                     lambda x: np.sum(x**2), np.array([1.0, 2.0]), method="complex_step",
                     step=step, full_output=True)),
                 lambda a: value_ok(a, lambda v: allclose(v, [2.0, 4.0])), None,
                 truth=np.array([2.0, 4.0])),
        ]
    cases += [
        Case(SUITE, t + "test_real_value_with_complex_dtype_accepted", "jacobian",
             lambda step: guarded(lambda: nd.jacobian(
                 lambda x: np.sum(x**2) + 0j, np.array([1.0, 2.0]), method="complex_step",
                 step=step, full_output=True)),
             lambda a: value_ok(a, lambda v: allclose(v, [2.0, 4.0])), None,
             truth=np.array([2.0, 4.0])),
        Case(SUITE, t + "test_central_complex_output_unchanged", "jacobian",
             lambda step: guarded(lambda: nd.jacobian(
                 lambda x: (1 + 1j) * x**2, np.array([1.0, 2.0]), step=step,
                 full_output=True)),
             lambda a: value_ok(a, lambda v: allclose(v, np.diag([2 + 2j, 4 + 4j]))), None,
             truth=np.diag([2 + 2j, 4 + 4j])),
    ]
    return cases


def _masked(xs: Any, valid: Any, method: Any, step: Any) -> Answer:
    """Valid elements come out bit for bit as without the invalid one; it is NaN."""
    def masked_exp(x: Any) -> Any:
        return np.where(valid, np.exp(x), np.nan)

    full = guarded(lambda: nd.derivative(np.exp, xs, method=method, step=step,
                                         full_output=True))
    part = guarded(lambda: nd.derivative(masked_exp, xs, method=method, step=step,
                                         full_output=True))
    if not (full.ok and part.ok):
        return part if not part.ok else full
    same = all(np.array_equal(np.asarray(getattr(full, f))[valid],
                              np.asarray(getattr(part, f))[valid])
               for f in ("value", "error", "status"))
    return Answer(np.array([same and bool(np.isnan(part.value[1]))]))


def _once(kind: str, f: Any, calls: list[Any], step: Any) -> Answer:
    """A complex-valued f with complex_step is refused (ValueError) after f(x) only."""
    calls.clear()
    a = guarded(lambda: getattr(nd, kind)(f, np.array([1.0, 2.0]), method="complex_step",
                                          step=step))
    return Answer(np.array([isinstance(a.exc, ValueError) and len(calls) == 1]))


def all_cases() -> list[Case]:
    from _peer_ndt_derivatives import derivative_cases, example_function_cases

    return example_function_cases() + derivative_cases() + jacobian_cases() + hessian_cases()


_ = nd_answer  # re-exported for the cases' users
