"""scipy.differentiate's own Jacobian and Hessian test assertions as cases (see
``_peer_scipy``). SciPy's ``jacobian``/``hessian`` are vectorised over trailing axes of
x; numdiffx computes one Jacobian (Hessian) per trailing index and stacks them."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from _peer_common import Answer, Case, allclose, guarded, value_ok
from _peer_scipy import RTOL64, SEED, SUITE, T, _peer, _rtol, _sd

import numdiffx as nd


def _f1(z: Any) -> Any:
    x, y = z
    return np.stack([x**2 * y, 5 * x + np.sin(y)])


def _df1(z: Any) -> Any:
    x, y = z
    return [[2 * x * y, x**2], [np.full_like(x, 5), np.cos(y)]]


def _f2(z: Any) -> Any:
    r, phi = z
    return np.stack([r * np.cos(phi), r * np.sin(phi)])


def _df2(z: Any) -> Any:
    r, phi = z
    return [[np.cos(phi), -r * np.sin(phi)], [np.sin(phi), r * np.cos(phi)]]


def _f3(z: Any) -> Any:
    r, phi, th = z
    return np.stack([r * np.sin(phi) * np.cos(th), r * np.sin(phi) * np.sin(th),
                     r * np.cos(phi)])


def _df3(z: Any) -> Any:
    r, phi, th = z
    return [[np.sin(phi) * np.cos(th), r * np.cos(phi) * np.cos(th),
             -r * np.sin(phi) * np.sin(th)],
            [np.sin(phi) * np.sin(th), r * np.cos(phi) * np.sin(th),
             r * np.sin(phi) * np.cos(th)],
            [np.cos(phi), -r * np.sin(phi), np.zeros_like(r)]]


def _f4(x: Any) -> Any:
    x1, x2, x3 = x
    return np.stack([x1, 5 * x3, 4 * x2**2 - 2 * x3, x3 * np.sin(x1)])


def _df4(x: Any) -> Any:
    x1, x2, x3 = x
    one = np.ones_like(x1)
    return [[one, 0 * one, 0 * one], [0 * one, 0 * one, 5 * one],
            [0 * one, 8 * x2, -2 * one], [x3 * np.cos(x1), 0 * one, np.sin(x1)]]


def _f5(x: Any) -> Any:
    x1, x2, x3 = x
    return np.stack([5 * x2, 4 * x1**2 - 2 * np.sin(x2 * x3), x2 * x3])


def _df5(x: Any) -> Any:
    x1, x2, x3 = x
    one = np.ones_like(x1)
    return [[0 * one, 5 * one, 0 * one],
            [8 * x1, -2 * x3 * np.cos(x2 * x3), -2 * x2 * np.cos(x2 * x3)],
            [0 * one, x3, x2]]


def _rosen(x: Any) -> Any:
    from scipy import optimize

    return optimize.rosen(x)


def _rosen_der(x: Any) -> Any:
    from scipy import optimize

    return optimize.rosen_der(x)


FUNCS = {"f1": (_f1, _df1, 2), "f2": (_f2, _df2, 2), "f3": (_f3, _df3, 3),
         "f4": (_f4, _df4, 3), "f5": (_f5, _df5, 3), "rosen": (_rosen, _rosen_der, 5)}


def _per_column(op: Any, f: Any, x: Any, step: Any) -> Answer:
    """``op`` (nd.jacobian, nd.gradient, nd.hessian) at every trailing index of x, the
    results stacked on the trailing axes (SciPy's layout)."""
    m = x.shape[0]
    cols = x.reshape(m, -1)
    parts = [guarded(lambda c=c: op(f, cols[:, c], step=step, full_output=True))
             for c in range(cols.shape[1])]
    bad = next((p for p in parts if not p.ok), None)
    if bad is not None:
        return bad
    out = []
    for attr in ("value", "error", "status"):
        a = np.stack([np.asarray(getattr(p, attr)) for p in parts], axis=-1)
        out.append(a.reshape(a.shape[:-1] + x.shape[1:]))
    return Answer(out[0], out[1], out[2], sum(p.nfev for p in parts))


def jacobian_hessian_cases() -> list[Case]:
    cases = []
    for name, (f, df, m) in FUNCS.items():
        for size in ((), (6,), (2, 3)):
            for dtype in (np.float32, np.float64):
                x = np.random.default_rng(SEED).random(size=(m,) + size)
                ref = np.asarray(df(x), dtype=dtype)
                atol = 1e-10 if dtype == np.float64 else 1.99e-3
                op = nd.gradient if name == "rosen" else nd.jacobian
                xd = np.asarray(x, dtype=dtype)
                cases.append(Case(
                    SUITE, T + "TestJacobian::test_examples",
                    f"{name} {size} {np.dtype(dtype).name}",
                    functools.partial(_per_column, op, f, xd),
                    lambda a, ref=ref, atol=atol, dtype=dtype: value_ok(
                        a, lambda v: allclose(v, ref, rtol=_rtol(dtype), atol=atol)),
                    lambda f=f, xd=xd: _peer(lambda: _sd().jacobian(f, xd)), truth=ref))
    b = np.random.default_rng(23892589425245).random(3)

    def f_dom(x: Any) -> Any:
        x = np.array(x, dtype=float)
        x[0] = np.where((x[0] < b[0]) | (x[0] > b[0] + 0.25), np.nan, x[0])
        x[1] = np.where((x[1] > b[1]) | (x[1] < b[1] - 0.1 - 1e-7), np.nan, x[1])
        return _f5(x)

    ref5 = np.asarray(_df5(b))
    cases.append(Case(
        SUITE, T + "TestJacobian::test_step_direction_size", "f5 on a box",
        lambda step: guarded(lambda: nd.jacobian(f_dom, b, step=step, full_output=True)),
        lambda a: value_ok(a, lambda v: allclose(v, ref5, rtol=RTOL64, atol=1e-8)),
        lambda: _peer(lambda: _sd().jacobian(f_dom, b, initial_step=[0.25, 0.1, 0.5],
                                             step_direction=[1, -1, 0],
                                             tolerances={"atol": 1e-8})), truth=ref5))
    return cases + _hessian_cases()


def _rosen_hess_columns(x: Any) -> Any:
    from scipy import optimize

    m = x.shape[0]
    cols = x.reshape(m, -1)
    h = np.stack([optimize.rosen_hess(cols[:, c]) for c in range(cols.shape[1])], axis=-1)
    return h.reshape((m, m) + x.shape[1:])


def _hessian_cases() -> list[Case]:
    cases = []
    for shape in ((), (4,), (2, 4)):
        x = np.random.default_rng(SEED).random((3,) + shape)
        ref = _rosen_hess_columns(x)
        cases.append(Case(
            SUITE, T + "TestHessian::test_example", f"rosen {shape}",
            functools.partial(_per_column, nd.hessian, _rosen, x),
            lambda a, ref=ref: value_ok(a, lambda v: allclose(v, ref, rtol=RTOL64, atol=1e-8)),
            lambda x=x: _peer(lambda: _sd().hessian(_rosen, x)), truth=ref))
    x32 = np.random.default_rng(SEED).random(3).astype(np.float32)
    ref32 = _rosen_hess_columns(x32.astype(np.float64))
    mask = ref32 != 0
    atol = 1e-2 * float(np.min(np.abs(ref32[mask])))

    def judge(a: Answer) -> bool:
        return value_ok(a, lambda v: allclose(v[mask], ref32[mask], rtol=_rtol(np.float32))
                        and allclose(v[~mask], ref32[~mask], atol=atol))

    cases.append(Case(
        SUITE, T + "TestHessian::test_float32", "rosen float32",
        lambda step: guarded(lambda: nd.hessian(_rosen, x32, step=step, full_output=True)),
        judge, lambda: _peer(lambda: _sd().hessian(_rosen, x32)), truth=ref32))
    return cases
