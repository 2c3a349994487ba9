"""Test problems with known sparse Hessians (shared by ``bench_sparse_hessian`` and
``compare/sparse_hessian_vs_dense.py``): a chained Rosenbrock (tridiagonal), an arrowhead
(``x_0`` couples to every variable) and a 2-D five-point grid energy. Each f and gradient
take a batch on leading axes; the exact Hessians are ``scipy.sparse.csr_array``.
"""

from __future__ import annotations

import numpy as np


def rosen(x):
    a, b = x[..., :-1], x[..., 1:]
    return np.sum(100.0 * (b - a**2) ** 2 + (1.0 - a) ** 2, axis=-1)


def rosen_grad(x):
    a, b = x[..., :-1], x[..., 1:]
    t = b - a**2
    g = np.zeros_like(x)
    g[..., :-1] += -400.0 * a * t - 2.0 * (1.0 - a)
    g[..., 1:] += 200.0 * t
    return g


def rosen_hess(x):
    import scipy.sparse as sp  # the exact Hessians only: scipy is a peer here

    n = x.size
    d = np.zeros(n)
    d[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    return sp.diags([-400 * x[:-1], d, -400 * x[:-1]], [-1, 0, 1], format="csr")


def arrow(x):
    h, rest = x[..., :1], x[..., 1:]
    return np.sum(0.5 * h**2 * rest**2 + np.cos(rest), axis=-1) + np.exp(0.1 * x[..., 0])


def arrow_grad(x):
    h, rest = x[..., :1], x[..., 1:]
    head = h * np.sum(rest**2, axis=-1, keepdims=True) + 0.1 * np.exp(0.1 * h)
    return np.concatenate([head, h**2 * rest - np.sin(rest)], axis=-1)


def arrow_hess(x):
    import scipy.sparse as sp  # the exact Hessians only: scipy is a peer here

    n = x.size
    d = np.concatenate([[np.sum(x[1:] ** 2) + 0.01 * np.exp(0.1 * x[0])],
                        x[0] ** 2 - np.cos(x[1:])])
    off = 2 * x[0] * x[1:]
    i = np.arange(1, n)
    rows = np.concatenate([np.arange(n), np.zeros(n - 1, int), i])
    cols = np.concatenate([np.arange(n), i, np.zeros(n - 1, int)])
    return sp.csr_array((np.concatenate([d, off, off]), (rows, cols)), shape=(n, n))


def grid(a, b):
    def f(x):
        u = x.reshape(*x.shape[:-1], a, b)
        dx, dy = u[..., :, 1:] - u[..., :, :-1], u[..., 1:, :] - u[..., :-1, :]
        return (0.5 * (dx**2).sum(axis=(-2, -1)) + 0.5 * (dy**2).sum(axis=(-2, -1))
                + 0.25 * (x**4).sum(axis=-1))

    def g(x):
        u = x.reshape(*x.shape[:-1], a, b)
        out = u**3
        dx, dy = u[..., :, 1:] - u[..., :, :-1], u[..., 1:, :] - u[..., :-1, :]
        out[..., :, 1:] += dx
        out[..., :, :-1] -= dx
        out[..., 1:, :] += dy
        out[..., :-1, :] -= dy
        return out.reshape(x.shape)

    def hess(x):
        import scipy.sparse as sp  # the exact Hessians only: scipy is a peer here

        n = a * b
        idx = np.arange(n).reshape(a, b)
        pairs = [(idx[:, 1:].ravel(), idx[:, :-1].ravel()), (idx[1:].ravel(), idx[:-1].ravel())]
        p = np.concatenate([q[0] for q in pairs])
        q = np.concatenate([q[1] for q in pairs])
        diag = 3 * x**2 + np.bincount(p, minlength=n) + np.bincount(q, minlength=n)
        off = -np.ones(p.size)
        return sp.csr_array((np.concatenate([diag, off, off]),
                             (np.concatenate([np.arange(n), p, q]),
                              np.concatenate([np.arange(n), q, p]))), shape=(n, n))

    return f, g, hess


def problems(n):
    a = int(round(np.sqrt(n)))
    gf, gg, gh = grid(a, n // a)
    return [("rosenbrock", n, rosen, rosen_grad, rosen_hess),
            ("arrowhead", n, arrow, arrow_grad, arrow_hess),
            ("grid", a * (n // a), gf, gg, gh)]
