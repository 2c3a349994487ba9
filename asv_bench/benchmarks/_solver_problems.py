"""Solver problems with exact derivatives: least squares, stiff ODEs, Newton minimisation.

Used by ``bench_solvers.py`` (asv) and ``../compare/solvers_vs_scipy.py`` (ratios in one
run). Everything is plain numpy; the exact derivatives are written out by hand and
checked against finite differences by ``tests/test_scipy.py``.

- Least squares: Moré, Garbow and Hillstrom, "Testing unconstrained optimization
  software", ACM TOMS 7 (1981), problems 1-20 (residuals ``f_i``, their ``x0`` and the
  published ``sum f_i**2`` at the solution), and four large sparse ones (extended
  Rosenbrock, discrete boundary value, Broyden tridiagonal, Broyden banded) at n = 1000.
- Stiff ODEs: Robertson, Van der Pol (mu = 1000), the 1-D Brusselator with N = 100
  grid points (n = 200, u and v interleaved: a banded Jacobian).
- Minimisation: Rosenbrock n = 10 (``scipy.optimize.rosen*``), a d = 20 logistic
  regression on 500 seeded samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class LeastSquares:
    name: str
    fun: Callable[[Array], Array]
    jac: Callable[[Array], Any]  # dense array, or scipy.sparse for the sparse problems
    x0: Array
    f_star: float | None  # MGH's sum f_i**2 at the solution (None: not published/local)
    sparsity: Any = None  # the Jacobian's structure (sparse problems)

    @property
    def n(self) -> int:
        return int(self.x0.size)


def _mgh() -> list[LeastSquares]:
    out: list[LeastSquares] = []

    def add(name: str, fun: Callable[[Array], Array], jac: Callable[[Array], Array],
            x0: list[float], f_star: float | None) -> None:
        out.append(LeastSquares(name, fun, jac, np.array(x0, dtype=float), f_star))

    add("rosenbrock", lambda x: np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]]),
        lambda x: np.array([[-20 * x[0], 10.0], [-1.0, 0.0]]), [-1.2, 1.0], 0.0)

    add("freudenstein_roth",
        lambda x: np.array([-13 + x[0] + ((5 - x[1]) * x[1] - 2) * x[1],
                            -29 + x[0] + ((x[1] + 1) * x[1] - 14) * x[1]]),
        lambda x: np.array([[1.0, 10 * x[1] - 3 * x[1] ** 2 - 2],
                            [1.0, 3 * x[1] ** 2 + 2 * x[1] - 14]]),
        [0.5, -2.0], None)  # 0 at (5, 4); from x0 solvers usually stop at 48.9842

    add("powell_badly_scaled",
        lambda x: np.array([1e4 * x[0] * x[1] - 1, np.exp(-x[0]) + np.exp(-x[1]) - 1.0001]),
        lambda x: np.array([[1e4 * x[1], 1e4 * x[0]], [-np.exp(-x[0]), -np.exp(-x[1])]]),
        [0.0, 1.0], 0.0)

    add("brown_badly_scaled",
        lambda x: np.array([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2]),
        lambda x: np.array([[1.0, 0.0], [0.0, 1.0], [x[1], x[0]]]), [1.0, 1.0], 0.0)

    i3 = np.arange(1, 4)
    y_beale = np.array([1.5, 2.25, 2.625])
    add("beale", lambda x: y_beale - x[0] * (1 - x[1] ** i3),
        lambda x: np.stack([-(1 - x[1] ** i3), x[0] * i3 * x[1] ** (i3 - 1)], axis=1),
        [1.0, 1.0], 0.0)

    i10 = np.arange(1, 11)
    add("jennrich_sampson",
        lambda x: 2 + 2 * i10 - (np.exp(i10 * x[0]) + np.exp(i10 * x[1])),
        lambda x: np.stack([-i10 * np.exp(i10 * x[0]), -i10 * np.exp(i10 * x[1])], axis=1),
        [0.3, 0.4], 124.362)

    def theta(x: Array) -> float:
        return np.arctan(x[1] / x[0]) / (2 * np.pi) + (0.5 if x[0] < 0 else 0.0)

    def helical(x: Array) -> Array:
        return np.array([10 * (x[2] - 10 * theta(x)), 10 * (np.hypot(x[0], x[1]) - 1), x[2]])

    def helical_jac(x: Array) -> Array:
        r2 = x[0] ** 2 + x[1] ** 2
        r = np.sqrt(r2)
        return np.array([[100 * x[1] / (2 * np.pi * r2), -100 * x[0] / (2 * np.pi * r2), 10.0],
                         [10 * x[0] / r, 10 * x[1] / r, 0.0], [0.0, 0.0, 1.0]])

    add("helical_valley", helical, helical_jac, [-1.0, 0.0, 0.0], 0.0)

    u15 = np.arange(1, 16, dtype=float)
    v15 = 16 - u15
    w15 = np.minimum(u15, v15)
    y_bard = np.array([0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96,
                       1.34, 2.10, 4.39])

    def bard_jac(x: Array) -> Array:
        d2 = (v15 * x[1] + w15 * x[2]) ** 2
        return np.stack([-np.ones(15), u15 * v15 / d2, u15 * w15 / d2], axis=1)

    add("bard", lambda x: y_bard - (x[0] + u15 / (v15 * x[1] + w15 * x[2])), bard_jac,
        [1.0, 1.0, 1.0], 8.21487e-3)

    t_gauss = (8 - u15) / 2
    y_gauss = np.array([0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989,
                        0.3521, 0.2420, 0.1295, 0.0540, 0.0175, 0.0044, 0.0009])

    def gauss_jac(x: Array) -> Array:
        d = t_gauss - x[2]
        e = np.exp(-x[1] * d ** 2 / 2)
        return np.stack([e, -x[0] * e * d ** 2 / 2, x[0] * e * x[1] * d], axis=1)

    add("gaussian", lambda x: x[0] * np.exp(-x[1] * (t_gauss - x[2]) ** 2 / 2) - y_gauss,
        gauss_jac, [0.4, 1.0, 0.0], 1.12793e-8)

    t_meyer = 45 + 5 * np.arange(1, 17, dtype=float)
    y_meyer = np.array([34780, 28610, 23650, 19630, 16370, 13720, 11540, 9744, 8261, 7030,
                        6005, 5147, 4427, 3820, 3307, 2872], dtype=float)

    def meyer_jac(x: Array) -> Array:
        s = t_meyer + x[2]
        e = np.exp(x[1] / s)
        return np.stack([e, x[0] * e / s, -x[0] * e * x[1] / s ** 2], axis=1)

    add("meyer", lambda x: x[0] * np.exp(x[1] / (t_meyer + x[2])) - y_meyer, meyer_jac,
        [0.02, 4000.0, 250.0], 87.9458)

    t_box = 0.1 * np.arange(1, 11)
    c_box = np.exp(-t_box) - np.exp(-10 * t_box)
    add("box_3d",
        lambda x: np.exp(-t_box * x[0]) - np.exp(-t_box * x[1]) - x[2] * c_box,
        lambda x: np.stack([-t_box * np.exp(-t_box * x[0]), t_box * np.exp(-t_box * x[1]),
                            -c_box], axis=1), [0.0, 10.0, 20.0], 0.0)

    s5, s10 = np.sqrt(5.0), np.sqrt(10.0)

    def powell_singular_jac(x: Array) -> Array:
        a, b = 2 * (x[1] - 2 * x[2]), 2 * s10 * (x[0] - x[3])
        return np.array([[1.0, 10.0, 0.0, 0.0], [0.0, 0.0, s5, -s5], [0.0, a, -2 * a, 0.0],
                         [b, 0.0, 0.0, -b]])

    add("powell_singular",
        lambda x: np.array([x[0] + 10 * x[1], s5 * (x[2] - x[3]), (x[1] - 2 * x[2]) ** 2,
                            s10 * (x[0] - x[3]) ** 2]),
        powell_singular_jac, [3.0, -1.0, 0.0, 1.0], 0.0)

    s90 = np.sqrt(90.0)
    add("wood",
        lambda x: np.array([10 * (x[1] - x[0] ** 2), 1 - x[0], s90 * (x[3] - x[2] ** 2),
                            1 - x[2], s10 * (x[1] + x[3] - 2), (x[1] - x[3]) / s10]),
        lambda x: np.array([[-20 * x[0], 10, 0, 0], [-1, 0, 0, 0], [0, 0, -2 * s90 * x[2], s90],
                            [0, 0, -1, 0], [0, s10, 0, s10], [0, 1 / s10, 0, -1 / s10]],
                           dtype=float), [-3.0, -1.0, -3.0, -1.0], 0.0)

    y_ko = np.array([0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323,
                     0.0235, 0.0246])
    u_ko = np.array([4, 2, 1, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])

    def ko(x: Array) -> Array:
        return y_ko - x[0] * (u_ko ** 2 + u_ko * x[1]) / (u_ko ** 2 + u_ko * x[2] + x[3])

    def ko_jac(x: Array) -> Array:
        num, den = u_ko ** 2 + u_ko * x[1], u_ko ** 2 + u_ko * x[2] + x[3]
        return np.stack([-num / den, -x[0] * u_ko / den, x[0] * num * u_ko / den ** 2,
                         x[0] * num / den ** 2], axis=1)

    add("kowalik_osborne", ko, ko_jac, [0.25, 0.39, 0.415, 0.39], 3.07505e-4)

    t_bd = np.arange(1, 21) / 5

    def brown_dennis(x: Array) -> Array:
        return ((x[0] + t_bd * x[1] - np.exp(t_bd)) ** 2
                + (x[2] + x[3] * np.sin(t_bd) - np.cos(t_bd)) ** 2)

    def brown_dennis_jac(x: Array) -> Array:
        a = 2 * (x[0] + t_bd * x[1] - np.exp(t_bd))
        b = 2 * (x[2] + x[3] * np.sin(t_bd) - np.cos(t_bd))
        return np.stack([a, a * t_bd, b, b * np.sin(t_bd)], axis=1)

    add("brown_dennis", brown_dennis, brown_dennis_jac, [25.0, 5.0, -5.0, -1.0], 85822.2)

    t_o1 = 10.0 * np.arange(33)
    y_o1 = np.array([0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784,
                     0.751, 0.718, 0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522,
                     0.506, 0.490, 0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420,
                     0.414, 0.411, 0.406])

    def osborne1_jac(x: Array) -> Array:
        e4, e5 = np.exp(-t_o1 * x[3]), np.exp(-t_o1 * x[4])
        return np.stack([-np.ones(33), -e4, -e5, x[1] * t_o1 * e4, x[2] * t_o1 * e5], axis=1)

    add("osborne_1",
        lambda x: y_o1 - (x[0] + x[1] * np.exp(-t_o1 * x[3]) + x[2] * np.exp(-t_o1 * x[4])),
        osborne1_jac, [0.5, 1.5, -1.0, 0.01, 0.02], 5.46489e-5)

    t_b6 = 0.1 * np.arange(1, 14)
    y_b6 = np.exp(-t_b6) - 5 * np.exp(-10 * t_b6) + 3 * np.exp(-4 * t_b6)

    def biggs(x: Array) -> Array:
        return (x[2] * np.exp(-t_b6 * x[0]) - x[3] * np.exp(-t_b6 * x[1])
                + x[5] * np.exp(-t_b6 * x[4]) - y_b6)

    def biggs_jac(x: Array) -> Array:
        e1, e2, e5 = np.exp(-t_b6 * x[0]), np.exp(-t_b6 * x[1]), np.exp(-t_b6 * x[4])
        return np.stack([-t_b6 * x[2] * e1, t_b6 * x[3] * e2, e1, -e2, -t_b6 * x[5] * e5, e5],
                        axis=1)

    add("biggs_exp6", biggs, biggs_jac, [1.0, 2.0, 1.0, 1.0, 1.0, 1.0], None)  # 0 or 5.65565e-3

    t_o2 = np.arange(65) / 10
    y_o2 = np.array([
        1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725, 0.746, 0.679,
        0.608, 0.655, 0.616, 0.606, 0.602, 0.626, 0.651, 0.724, 0.649, 0.649, 0.694, 0.644,
        0.624, 0.661, 0.612, 0.558, 0.533, 0.495, 0.500, 0.423, 0.395, 0.375, 0.372, 0.391,
        0.396, 0.405, 0.428, 0.429, 0.523, 0.562, 0.607, 0.653, 0.672, 0.708, 0.633, 0.668,
        0.645, 0.632, 0.591, 0.559, 0.597, 0.625, 0.739, 0.710, 0.729, 0.720, 0.636, 0.581,
        0.428, 0.292, 0.162, 0.098, 0.054])

    def osborne2(x: Array) -> Array:
        model = x[0] * np.exp(-t_o2 * x[4])
        for k in range(3):
            model = model + x[1 + k] * np.exp(-(t_o2 - x[8 + k]) ** 2 * x[5 + k])
        return y_o2 - model

    def osborne2_jac(x: Array) -> Array:
        jac = np.zeros((65, 11))
        e = np.exp(-t_o2 * x[4])
        jac[:, 0], jac[:, 4] = -e, t_o2 * x[0] * e
        for k in range(3):
            d = t_o2 - x[8 + k]
            g = np.exp(-d ** 2 * x[5 + k])
            jac[:, 1 + k] = -g
            jac[:, 5 + k] = x[1 + k] * d ** 2 * g
            jac[:, 8 + k] = -2 * x[1 + k] * x[5 + k] * d * g
        return jac

    add("osborne_2", osborne2, osborne2_jac,
        [1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5], 4.01377e-2)

    t_w = np.arange(1, 30) / 29
    powers = np.arange(6)

    def watson(x: Array) -> Array:
        tp = t_w[:, None] ** powers  # (29, 6): t^(j-1)
        s1 = (tp[:, :-1] * powers[1:] * x[1:]).sum(axis=1)  # sum (j-1) x_j t^(j-2)
        s2 = tp @ x
        return np.concatenate([s1 - s2 ** 2 - 1, [x[0], x[1] - x[0] ** 2 - 1]])

    def watson_jac(x: Array) -> Array:
        tp = t_w[:, None] ** powers
        s2 = tp @ x
        jac = np.zeros((31, 6))
        jac[:29, 1:] = powers[1:] * tp[:, :-1]
        jac[:29] -= 2 * s2[:, None] * tp
        jac[29, 0] = 1.0
        jac[30, 0], jac[30, 1] = -2 * x[0], 1.0
        return jac

    add("watson", watson, watson_jac, [0.0] * 6, 2.28767e-3)
    return out


def _sparse(n: int = 1000) -> list[LeastSquares]:
    import scipy.sparse as sp

    out = []
    i = np.arange(n)

    def ext_rosenbrock(x: Array) -> Array:
        f = np.empty_like(x)
        f[0::2] = 10 * (x[1::2] - x[0::2] ** 2)
        f[1::2] = 1 - x[0::2]
        return f

    def ext_rosenbrock_jac(x: Array) -> Any:
        odd = i[0::2]
        rows = np.concatenate([odd, odd, odd + 1])
        cols = np.concatenate([odd, odd + 1, odd])
        vals = np.concatenate([-20 * x[0::2], np.full(n // 2, 10.0), np.full(n // 2, -1.0)])
        return sp.csr_array((vals, (rows, cols)), shape=(n, n))

    x0 = np.tile([-1.2, 1.0], n // 2)
    out.append(LeastSquares(f"extended_rosenbrock_{n}", ext_rosenbrock, ext_rosenbrock_jac,
                            x0, 0.0, ext_rosenbrock_jac(x0) != 0))

    def shifted(x: Array) -> tuple[Array, Array]:
        left = np.concatenate([[0.0], x[:-1]])
        right = np.concatenate([x[1:], [0.0]])
        return left, right

    def tridiagonal(diag: Array, lower: float | Array, upper: float | Array) -> Any:
        return sp.diags_array([np.broadcast_to(lower, (n - 1,)), diag,
                               np.broadcast_to(upper, (n - 1,))], offsets=[-1, 0, 1],
                              shape=(n, n)).tocsr()

    h = 1.0 / (n + 1)
    t = (i + 1) * h

    def boundary(x: Array) -> Array:
        left, right = shifted(x)
        return 2 * x - left - right + h ** 2 * (x + t + 1) ** 3 / 2

    def boundary_jac(x: Array) -> Any:
        return tridiagonal(2 + 1.5 * h ** 2 * (x + t + 1) ** 2, -1.0, -1.0)

    x0 = t * (t - 1)
    out.append(LeastSquares(f"discrete_boundary_value_{n}", boundary, boundary_jac, x0, 0.0,
                            boundary_jac(x0) != 0))

    def broyden_tri(x: Array) -> Array:
        left, right = shifted(x)
        return (3 - 2 * x) * x - left - 2 * right + 1

    def broyden_tri_jac(x: Array) -> Any:
        return tridiagonal(3 - 4 * x, -1.0, -2.0)

    x0 = -np.ones(n)
    out.append(LeastSquares(f"broyden_tridiagonal_{n}", broyden_tri, broyden_tri_jac, x0, 0.0,
                            broyden_tri_jac(x0) != 0))

    lower_band, upper_band = 5, 1
    offsets = [k for k in range(-lower_band, upper_band + 1) if k != 0]

    def broyden_banded(x: Array) -> Array:
        g = x * (1 + x)
        f = x * (2 + 5 * x ** 2) + 1
        for k in offsets:  # f_i -= g_(i+k) where 0 <= i + k < n
            if k > 0:
                f[:-k] -= g[k:]
            else:
                f[-k:] -= g[:k]
        return f

    def broyden_banded_jac(x: Array) -> Any:
        dg = -(1 + 2 * x)
        diagonals = [dg[:n + k] if k < 0 else dg[k:] for k in offsets]
        return sp.diags_array([*diagonals, 2 + 15 * x ** 2], offsets=[*offsets, 0],
                              shape=(n, n)).tocsr()

    out.append(LeastSquares(f"broyden_banded_{n}", broyden_banded, broyden_banded_jac, x0, 0.0,
                            broyden_banded_jac(x0) != 0))
    return out


LEAST_SQUARES = _mgh()


def sparse_least_squares(n: int = 1000) -> list[LeastSquares]:
    """The four sparse problems at size n (built on demand: they need scipy.sparse)."""
    return _sparse(n)


# ---------------------------------------------------------------------------------------
# stiff ODEs
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ode:
    name: str
    fun: Callable[[float, Array], Array]
    jac: Callable[[float, Array], Any]
    y0: Array
    t_span: tuple[float, float]
    rtol: float = 1e-6
    atol: float = 1e-8
    sparsity: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def _robertson() -> Ode:
    def fun(t: float, y: Array) -> Array:
        return np.array([-0.04 * y[0] + 1e4 * y[1] * y[2],
                         0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                         3e7 * y[1] ** 2])

    def jac(t: float, y: Array) -> Array:
        return np.array([[-0.04, 1e4 * y[2], 1e4 * y[1]],
                         [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
                         [0.0, 6e7 * y[1], 0.0]])

    return Ode("robertson", fun, jac, np.array([1.0, 0.0, 0.0]), (0.0, 1e5), 1e-6, 1e-10)


def _van_der_pol(mu: float = 1000.0) -> Ode:
    def fun(t: float, y: Array) -> Array:
        return np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])

    def jac(t: float, y: Array) -> Array:
        return np.array([[0.0, 1.0], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] ** 2)]])

    return Ode("van_der_pol_1000", fun, jac, np.array([2.0, 0.0]), (0.0, 3000.0), 1e-6, 1e-8)


def _brusselator(grid: int = 100, alpha: float = 0.02) -> Ode:
    """u' = 1 + u^2 v - 4 u + a c (u_(i-1) - 2 u_i + u_(i+1)), v' = 3 u - u^2 v + a c (...)
    on N interior points, c = (N + 1)^2, u = 1, v = 3 at both ends (Hairer & Wanner II,
    IV.10); state interleaved (u_1, v_1, u_2, ...): a band of half-width 2."""
    import scipy.sparse as sp

    c = alpha * (grid + 1) ** 2
    n = 2 * grid

    def fun(t: float, y: Array) -> Array:
        u, v = y[0::2], y[1::2]
        lap_u = np.concatenate([[1.0], u[:-1]]) - 2 * u + np.concatenate([u[1:], [1.0]])
        lap_v = np.concatenate([[3.0], v[:-1]]) - 2 * v + np.concatenate([v[1:], [3.0]])
        out = np.empty_like(y)
        out[0::2] = 1 + u ** 2 * v - 4 * u + c * lap_u
        out[1::2] = 3 * u - u ** 2 * v + c * lap_v
        return out

    def jac(t: float, y: Array) -> Any:
        u, v = y[0::2], y[1::2]
        k = np.arange(grid)
        rows = [2 * k, 2 * k, 2 * k + 1, 2 * k + 1]
        cols = [2 * k, 2 * k + 1, 2 * k, 2 * k + 1]
        vals = [2 * u * v - 4 - 2 * c, u ** 2, 3 - 2 * u * v, -u ** 2 - 2 * c]
        for off in (-2, 2):  # the neighbours' coupling, both species
            j = np.arange(n)
            keep = (j + off >= 0) & (j + off < n)
            rows.append(j[keep])
            cols.append(j[keep] + off)
            vals.append(np.full(int(keep.sum()), c))
        return sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(n, n))

    x = np.arange(1, grid + 1) / (grid + 1)
    y0 = np.empty(n)
    y0[0::2], y0[1::2] = 1 + np.sin(2 * np.pi * x), 3.0
    return Ode(f"brusselator_{n}", fun, jac, y0, (0.0, 10.0), 1e-6, 1e-8,
               sparsity=jac(0.0, y0) != 0)


def odes() -> list[Ode]:
    return [_robertson(), _van_der_pol(), _brusselator()]


# ---------------------------------------------------------------------------------------
# minimisation
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Minimisation:
    name: str
    fun: Callable[[Array], float]
    grad: Callable[[Array], Array]
    hess: Callable[[Array], Array]
    hessp: Callable[[Array, Array], Array]
    x0: Array


def _rosenbrock(n: int = 10) -> Minimisation:
    from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

    x0 = np.tile([-1.2, 1.0], n // 2)
    return Minimisation(f"rosenbrock_{n}", rosen, rosen_der, rosen_hess, rosen_hess_prod, x0)


def _logistic(d: int = 20, samples: int = 500, lam: float = 1e-2) -> Minimisation:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((samples, d))
    w_true = rng.standard_normal(d)
    y = np.where(X @ w_true + 0.5 * rng.standard_normal(samples) > 0, 1.0, -1.0)

    def fun(w: Array) -> float:
        return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + lam / 2 * w @ w)

    def sigma(w: Array) -> Array:  # sigmoid(-y X w)
        return 0.5 * (1 - np.tanh(0.5 * y * (X @ w)))

    def grad(w: Array) -> Array:
        return -(X.T @ (y * sigma(w))) / samples + lam * w

    def hess(w: Array) -> Array:
        s = sigma(w)
        return (X.T * (s * (1 - s))) @ X / samples + lam * np.eye(d)

    def hessp(w: Array, p: Array) -> Array:
        s = sigma(w)
        return X.T @ (s * (1 - s) * (X @ p)) / samples + lam * p

    return Minimisation(f"logistic_{d}", fun, grad, hess, hessp, np.zeros(d))


def minimisations() -> list[Minimisation]:
    return [_rosenbrock(), _logistic()]
