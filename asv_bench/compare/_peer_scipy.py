"""scipy.differentiate's own test assertions as cases (see ``_peer_common``).

Read from ``scipy/differentiate/tests/test_differentiate.py`` (SciPy 1.17) and
re-expressed; the distributions of ``test_accuracy`` come from SciPy's library table
``scipy.stats._distr_params.distcont`` at run time. SciPy's options map onto numdiffx:
``step_direction`` 0 / 1 / -1 onto ``central`` / ``forward`` / ``backward`` (an array of
directions that encodes a domain, ``test_step_direction``, onto ``adaptive(bounds=...)``
for the adaptive rule), ``order`` onto the stencil's order, ``tolerances`` onto
``adaptive(atol=..., rtol=...)`` (the default rule has none). Left out: SciPy's own
bookkeeping (``nit``, ``nfev``, callbacks, ``maxiter``, ``initial_step``,
``step_factor``, status flags of ``test_flags``, vectorisation, input validation).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from _peer_common import Answer, Case, allclose, error_of, guarded, value_ok

import numdiffx as nd

SUITE = "scipy.differentiate"
T = "test_differentiate.py::"
RTOL64 = np.finfo(np.float64).eps ** 0.5 * 4  # xp_assert_close's default rtol
SEED = 458912319542


def _rtol(dtype: Any) -> float:
    return float(np.finfo(dtype).eps) ** 0.5 * 4


def _tolerances(step: Any, atol: float = 0.0, rtol: float | None = None) -> Any:
    """The rule under test with SciPy's ``tolerances`` (only adaptive has tolerances)."""
    if isinstance(step, nd.steps.adaptive):
        return nd.steps.adaptive(atol=atol, rtol=rtol)
    return step


def _direction(hdir: int, order: int | None = None) -> Any:
    family = {0: nd.central, 1: nd.forward, -1: nd.backward}[hdir]
    if order is None:
        return family()
    return family(order=order + order % 2 if hdir == 0 else order)


def _deriv(f: Any, x: Any, step: Any, method: Any = None, dtype: Any = np.float64) -> Answer:
    return guarded(lambda: nd.derivative(f, np.asarray(x, dtype=dtype),
                                         method=method or nd.central(), step=step,
                                         full_output=True))


def _peer(call: Any) -> Answer:
    def convert(r: Any) -> Answer:
        value = getattr(r, "df", None)
        value = r.ddf if value is None else value
        return Answer(np.asarray(value), np.asarray(r.error), np.asarray(r.status))
    return guarded(call, convert)


def _sd() -> Any:
    import scipy.differentiate as sd

    return sd


def derivative_cases() -> list[Case]:
    from scipy import special, stats

    cases = []
    for x in (0.6, np.linspace(-0.05, 1.05, 10)):
        ref = stats.norm().pdf(x)

        def judge(a: Answer, ref: Any = ref) -> bool:
            return value_ok(a, lambda v: allclose(v, ref, rtol=RTOL64)) and bool(
                np.all(np.abs(a.value - ref) < error_of(a)))

        cases.append(Case(SUITE, T + "TestDerivative::test_basic", f"x={np.size(x)} points",
                          functools.partial(_deriv, special.ndtr, x), judge,
                          lambda x=x: _peer(lambda: _sd().derivative(special.ndtr, x)),
                          truth=ref))
    cases += _accuracy_cases()

    def f4(x: Any) -> Any:
        return np.stack([x, np.sin(3 * x), x + np.sin(10 * x), np.sin(20 * x) * (x - 1) ** 2])

    ref4 = np.array([1.0, 3.0, 11.0, 20.0])
    cases.append(Case(
        SUITE, T + "TestDerivative::test_preserve_shape", "4 outputs at x = 0",
        lambda step: guarded(lambda: nd.jacobian(f4, np.asarray(0.0), step=step,
                                                 full_output=True)),
        lambda a: value_ok(a, lambda v: allclose(v, ref4, rtol=RTOL64)),
        lambda: _peer(lambda: _sd().derivative(f4, 0.0, preserve_shape=True)), truth=ref4))
    ref = float(stats.norm.pdf(1.0))
    for kind, loose, tight in (("atol", 1e-3, 1e-6), ("rtol", 1e-3, 1e-6)):
        def call(step: Any, kind: str = kind, loose: float = loose, tight: float = tight
                 ) -> Answer:
            out = []
            for tol in (loose, tight):
                tols = {"atol": 0.0, "rtol": 0.0, kind: tol}
                out.append(_deriv(special.ndtr, 1.0, _tolerances(step, **tols),
                                  nd.central(order=4)))
            if not all(a.ok for a in out):
                return next(a for a in out if not a.ok)
            return Answer(np.array([float(out[0].value), float(out[1].value)]))

        def judge_c(a: Answer, kind: str = kind, loose: float = loose, tight: float = tight
                    ) -> bool:
            if not a.ok:
                return False
            e1, e2 = abs(a.value[0] - ref), abs(a.value[1] - ref)
            scale = ref if kind == "rtol" else 1.0
            return bool(e1 < loose * scale and e2 < tight * scale and e2 < e1)

        def peer_c(kind: str = kind, loose: float = loose, tight: float = tight) -> Answer:
            vals = [float(_sd().derivative(special.ndtr, 1.0, order=4, tolerances={
                "atol": 0, "rtol": 0, kind: tol}).df) for tol in (loose, tight)]
            return Answer(np.array(vals))

        cases.append(Case(SUITE, T + "TestDerivative::test_convergence", kind, call, judge_c,
                          peer_c))
    cases += _direction_cases() + _special_cases()
    return cases


def _accuracy_cases() -> list[Case]:
    from scipy import stats
    from scipy.stats._distr_params import distcont

    cases = []
    for name, params in distcont:
        def setup(name: str = name, params: Any = params) -> tuple[Any, float]:
            dist = getattr(stats, name)(*params)
            return dist, float(dist.median() + 0.1)

        def call(step: Any, setup: Any = setup) -> Answer:
            dist, x = setup()
            return _deriv(dist.cdf, x, step)

        def judge(a: Answer, setup: Any = setup) -> bool:
            dist, x = setup()
            return value_ok(a, lambda v: allclose(v, dist.pdf(x), rtol=RTOL64, atol=1e-10))

        def peer(setup: Any = setup) -> Answer:
            dist, x = setup()
            return _peer(lambda: _sd().derivative(dist.cdf, x))

        cases.append(Case(SUITE, T + "TestDerivative::test_accuracy", f"{name}{params}",
                          call, judge, peer, truth=lambda setup=setup: setup()[0].pdf(
                              setup()[1])))
    return cases


def _direction_cases() -> list[Case]:
    cases = []

    def f_dom(x: Any) -> Any:
        return np.where((x < 0) | (x > 2), np.nan, np.exp(x))

    x = np.linspace(0, 2, 10)
    hdir = np.where(x < 0.6, 1, np.where(x > 1.4, -1, 0))

    def call(step: Any) -> Answer:
        if isinstance(step, nd.steps.adaptive):  # the domain, as numdiffx is told it
            step = nd.steps.adaptive(bounds=(0.0, 2.0))
        return _deriv(f_dom, x, step)

    cases.append(Case(
        SUITE, T + "TestDerivative::test_step_direction", "exp on [0, 2]", call,
        lambda a: value_ok(a, lambda v: allclose(v, np.exp(x), rtol=RTOL64))
        and bool(np.all(a.status == 0)),
        lambda: _peer(lambda: _sd().derivative(f_dom, x, step_direction=hdir)),
        truth=np.exp(x)))
    xs, ps = np.array([1.0, 2.0, 3.0, 4.0]), (2, 3)

    def call_v(step: Any) -> Answer:
        out = [_deriv(lambda t, p=p: t**p, xs, step, _direction(h)) for h in (-1, 0, 1)
               for p in ps]
        bad = next((a for a in out if not a.ok), None)
        return bad or Answer(np.stack([a.value for a in out]))

    ref_v = np.stack([p * xs ** (p - 1) for _ in (-1, 0, 1) for p in ps])
    cases.append(Case(
        SUITE, T + "TestDerivative::test_vectorized_step_direction_args", "x**p", call_v,
        lambda a: value_ok(a, lambda v: allclose(v, ref_v, rtol=RTOL64)),
        lambda: Answer(np.stack([_sd().derivative(lambda t, p=p: t**p, xs,
                                                  step_direction=h).df
                                 for h in (-1, 0, 1) for p in ps])), truth=ref_v))
    for dtype in (np.float32, np.float64):
        for xv in (0.65, [0.65, 0.7]):
            for h in (-1, 0, 1):
                eps = float(np.finfo(dtype).eps)
                cases.append(Case(
                    SUITE, T + "TestDerivative::test_dtype",
                    f"{np.dtype(dtype).name} x={xv} hdir={h}",
                    lambda step, xv=xv, h=h, dtype=dtype: _dtype_kept(
                        _deriv(np.exp, xv, step, _direction(h, 4), dtype), dtype),
                    lambda a, xv=xv, eps=eps: value_ok(a, lambda v: allclose(
                        v, np.exp(np.asarray(xv, dtype=v.dtype)), rtol=eps ** 0.5)),
                    lambda xv=xv, h=h, dtype=dtype: _peer(lambda: _sd().derivative(
                        np.exp, np.asarray(xv, dtype=dtype), order=4, step_direction=h)),
                    truth=np.exp(np.asarray(xv))))
    return cases


def _dtype_kept(a: Answer, dtype: Any) -> Answer:
    if a.ok and (np.asarray(a.value).dtype != dtype or np.asarray(a.error).dtype != dtype):
        return Answer(exc=TypeError(f"dtype {np.asarray(a.value).dtype}, not {dtype}"))
    return a


def _special_cases() -> list[Case]:
    cases = []
    ref99 = 99 * 7.0**98
    cases.append(Case(
        SUITE, T + "TestDerivative::test_special_cases", "x**99 - 1 at 7",
        lambda step: _deriv(lambda x: x**99 - 1, 7.0, _tolerances(step, rtol=1e-10)),
        lambda a: value_ok(a, lambda v: allclose(v, ref99, rtol=RTOL64))
        and bool(np.all(a.status == 0)),
        lambda: _peer(lambda: _sd().derivative(lambda x: x**99 - 1, 7,
                                               tolerances={"rtol": 1e-10})), truth=ref99))
    for n in range(6):
        ref = 2 * n * 1.5 ** (n - 1)
        cases.append(Case(
            SUITE, T + "TestDerivative::test_special_cases", f"2 x**{n} at 1.5",
            lambda step, n=n: _deriv(lambda x: 2 * x**n, 1.5, step,
                                     _direction(0, max(1, n))),
            lambda a, ref=ref: value_ok(a, lambda v: allclose(v, ref, rtol=1e-15))
            and bool(np.all(a.status == 0)),
            lambda n=n: _peer(lambda: _sd().derivative(lambda x: 2 * x**n, 1.5,
                                                       order=max(1, n))), truth=ref))
    cases.append(Case(
        SUITE, T + "TestDerivative::test_special_cases", "3 x - 1 at 2",
        lambda step: _deriv(lambda x: 3 * x - 1, 2.0, step),
        lambda a: value_ok(a, lambda v: allclose(v, 3.0, rtol=RTOL64)),
        lambda: _peer(lambda: _sd().derivative(lambda x, c: c * x - 1, 2.0, args=(3.0,))),
        truth=3.0))
    saddles = (("(x - 1)**3", lambda x: (x - 1) ** 3),
               ("piecewise", lambda x: np.where(x > 1, (x - 1) ** 5, (x - 1) ** 3)))
    for label, f in saddles:  # xfail in SciPy's suite; its intent: atol 1e-16 is met
        def call(step: Any, f: Any = f) -> Answer:
            out = [_deriv(f, 1.0, _tolerances(step, atol=1e-16, rtol=0.0), _direction(h))
                   for h in (-1, 0, 1)]
            bad = next((a for a in out if not a.ok), None)
            return bad or Answer(np.array([a.value for a in out]), None,
                                 np.array([a.status for a in out]))

        cases.append(Case(
            SUITE, T + "TestDerivative::test_saddle_gh18811", label, call,
            lambda a: value_ok(a, lambda v: allclose(v, 0.0, atol=1e-16))
            and bool(np.all(a.status == 0)),
            lambda f=f: _peer(lambda: _sd().derivative(
                f, np.ones(3), step_direction=np.array([-1, 0, 1]),
                tolerances={"atol": 1e-16})), truth=np.zeros(3), tags=("xfail",)))
    return cases


def all_cases() -> list[Case]:
    from _peer_scipy_matrices import jacobian_hessian_cases

    return derivative_cases() + jacobian_hessian_cases()
